//! Notification targets configured by URL, shoutrrr- and apprise-compatible where practical.
//!
//! Secrets never need URL-escaping on the command line: a URL may be read whole from
//! `env:VAR` or `file:/path`, and any part may be `${VAR}`, `${env:VAR}` or `${file:/path}`
//! (inserted percent-encoded, so `@ : / ?` in a password cannot break the URL). Every secret
//! part of a URL (password, token, signing secret, `sig`/`key`/`token` query values, path tokens
//! of chat webhooks) is registered with the redactor as it is read.

use std::path::PathBuf;

use initbox_runtime::url as safe_url;
use initbox_runtime::{Failure, redact};
use url::Url;

use crate::bodies::BodyStyle;

/// Query keys whose values are secrets wherever they appear.
const SECRET_KEYS: &[&str] = &[
    "token",
    "key",
    "sig",
    "secret",
    "password",
    "pass",
    "apikey",
    "api_key",
    "access_token",
    "code",
    "routing_key",
    "integration_key",
    "auth",
];

/// Schemes whose userinfo is a token rather than a user name.
const USERINFO_SECRET_SCHEMES: &[&str] = &["telegram", "discord", "pagerduty", "rocket", "rockets"];

/// Schemes whose host part is a token (`slack://TOKEN-A/...`, `tgram://BOT_TOKEN/...`).
const HOST_SECRET_SCHEMES: &[&str] = &["slack", "tgram"];

pub const SCHEMES: &str = "webhook+https, webhook+http, generic, generic+https, json, jsons, \
    cloudevents+https, slack, slack+https, mattermost, mattermost+https, rocketchat, \
    rocketchat+https, rocket, rockets, mmost, mmosts, teams+https, workflows, discord, \
    discord+https, googlechat, gchat, googlechat+https, telegram, tgram, ntfy, ntfys, pagerduty, \
    pagerduty+https, smtp, smtps, mailto, mailtos, form, forms, xml, xmls, stdout, logger, file";

#[derive(Debug, Clone)]
pub struct Target {
    /// 1-based position among the targets, for messages.
    pub index: usize,
    /// The URL as it may be shown: secrets masked.
    pub shown: String,
    pub service: Service,
}

#[derive(Debug, Clone)]
pub enum Service {
    Http(Box<Http>),
    Smtp(Smtp),
    Stdout,
    File(PathBuf),
}

impl Service {
    pub fn name(&self) -> &'static str {
        match self {
            Service::Http(h) => h.kind.name(),
            Service::Smtp(_) => "smtp",
            Service::Stdout => "stdout",
            Service::File(_) => "file",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeMode {
    Structured,
    Binary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignScheme {
    /// `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>` (GitHub).
    Github,
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<b64>`.
    StandardWebhooks,
}

#[derive(Debug, Clone)]
pub struct Sign {
    pub scheme: SignScheme,
    pub secret: Vec<u8>,
    pub header: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PdAction {
    Trigger,
    Resolve,
    /// `failure`/`start`/`info` trigger, `success` resolves.
    Auto,
}

#[derive(Debug, Clone)]
pub enum Kind {
    Webhook {
        method: String,
        content_type: String,
        title_key: String,
        message_key: String,
        extra: Vec<(String, String)>,
        cloudevents: Option<CloudEvents>,
        /// Which body is sent without a `--body` template (initbox's, shoutrrr's, apprise's).
        style: BodyStyle,
    },
    Slack {
        markdown_bold: &'static str,
        extra: Vec<(String, String)>,
        blocks: bool,
        /// One request per channel (`channel` in the body); none: the webhook's own channel.
        channels: Vec<String>,
        /// Slack's Web API (`chat.postMessage` with a bot token), which answers `ok: false`.
        api: bool,
    },
    Teams,
    Discord {
        extra: Vec<(String, String)>,
    },
    GoogleChat,
    Telegram {
        token: String,
        chats: Vec<String>,
        silent: bool,
    },
    Ntfy {
        topic: String,
        priority: Option<u8>,
        tags: Vec<String>,
        click: Option<String>,
        icon: Option<String>,
        markdown: bool,
    },
    PagerDuty {
        routing_key: String,
        severity: String,
        source: Option<String>,
        component: Option<String>,
        group: Option<String>,
        class: Option<String>,
        action: PdAction,
        dedup_key: Option<String>,
    },
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Webhook {
                cloudevents: Some(_),
                ..
            } => "cloudevents",
            Kind::Webhook { .. } => "webhook",
            Kind::Slack { blocks: true, .. } => "slack",
            Kind::Slack { .. } => "mattermost",
            Kind::Teams => "teams",
            Kind::Discord { .. } => "discord",
            Kind::GoogleChat => "googlechat",
            Kind::Telegram { .. } => "telegram",
            Kind::Ntfy { .. } => "ntfy",
            Kind::PagerDuty { .. } => "pagerduty",
        }
    }
}

#[derive(Debug, Clone)]
pub struct CloudEvents {
    pub mode: CeMode,
    pub event_type: Option<String>,
    pub source: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Http {
    pub kind: Kind,
    pub url: Url,
    pub headers: Vec<(String, String)>,
    pub sign: Option<Sign>,
    pub bearer: Option<String>,
    pub basic: Option<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// TLS from the first byte (port 465).
    Implicit,
    /// STARTTLS, required (port 587).
    StartTls,
    /// Plain text (only when asked: `tls=none`).
    None,
}

#[derive(Debug, Clone)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub user: Option<String>,
    pub password: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    pub helo: Option<String>,
}

/// Query options of one URL, consumed as the service reads them; what is left is an error
/// (native schemes) or forwarded to the endpoint (`NAME+https://` forms).
struct Options {
    pairs: Vec<(String, String)>,
}

impl Options {
    fn new(url: &Url) -> Self {
        Options {
            pairs: url
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }
    fn take(&mut self, names: &[&str]) -> Option<String> {
        let pos = self
            .pairs
            .iter()
            .position(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n)))?;
        Some(self.pairs.remove(pos).1)
    }
    fn take_bool(&mut self, names: &[&str]) -> Result<Option<bool>, String> {
        match self.take(names) {
            None => Ok(None),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "" | "yes" | "true" | "1" | "on" => Ok(Some(true)),
                "no" | "false" | "0" | "off" => Ok(Some(false)),
                _ => Err(format!("option '{}' must be yes or no", names[0])),
            },
        }
    }
    /// `@Name=value` (shoutrrr) and `+Name=value` (apprise; `+` arrives as a space) headers.
    /// Header values carry credentials (`@Authorization=Bearer …`, `@X-Api-Key=…`): each is
    /// registered with the redactor, and so is each word after the first (the credential of
    /// `Bearer TOKEN`), so a server that echoes the header back prints no part of it.
    fn take_headers(&mut self) -> Vec<(String, String)> {
        let headers = self.take_prefixed(['@', ' ']);
        for (_, v) in &headers {
            redact::register(v);
            v.split_whitespace().skip(1).for_each(redact::register);
        }
        headers
    }
    /// `$key=value` (shoutrrr) and `:key=value` (apprise) extra payload fields.
    fn take_extra(&mut self) -> Vec<(String, String)> {
        self.take_prefixed(['$', ':'])
    }
    /// Remove the pairs whose key starts with either prefix; return them without it.
    pub(crate) fn take_prefixed(&mut self, prefixes: [char; 2]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        self.pairs.retain(|(k, v)| match k.strip_prefix(prefixes) {
            Some(name) => {
                out.push((name.to_string(), v.clone()));
                false
            }
            None => true,
        });
        out
    }
    /// A secret given inline (`name=`), from a file (`name_file=`) or from the environment
    /// (`name_env=`); registered with the redactor.
    fn take_secret(&mut self, name: &str) -> Result<Option<String>, String> {
        let inline = self.take(&[name]);
        let file = self.take(&[&format!("{name}_file"), &format!("{name}file")]);
        let env = self.take(&[&format!("{name}_env")]);
        let value = match (inline, file, env) {
            (Some(v), None, None) => v,
            (None, Some(path), None) => read_secret_file(&path, &format!("option '{name}_file'"))?,
            (None, None, Some(var)) => std::env::var(&var)
                .map_err(|_| format!("option '{name}_env': variable {var} is not set"))?,
            (None, None, None) => return Ok(None),
            _ => {
                return Err(format!(
                    "give '{name}' one way only: {name}=, {name}_file= or {name}_env="
                ));
            }
        };
        if value.is_empty() {
            return Err(format!("option '{name}' is empty"));
        }
        redact::register(&value);
        Ok(Some(value))
    }
    fn finish_strict(&self) -> Result<(), String> {
        match self.pairs.first() {
            None => Ok(()),
            Some((k, _)) => Err(format!("unknown option '{k}'")),
        }
    }
    /// Put the unconsumed options back on `url` (they belong to the endpoint).
    fn forward(&self, url: &mut Url) {
        if self.pairs.is_empty() {
            url.set_query(None);
        } else {
            let mut q = url.query_pairs_mut();
            q.clear();
            for (k, v) in &self.pairs {
                q.append_pair(k, v);
            }
        }
    }
}

/// Read a target argument: `env:VAR`, `file:/path` or a URL; expand `${...}` placeholders.
/// Returns the expanded URL and its display form.
fn resolve_input(index: usize, raw: &str) -> Result<(String, String), Failure> {
    let bad = |shown: &str, why: String| Failure::usage(format!("URL #{index} '{shown}': {why}"));
    let (raw, from) = if let Some(var) = raw.strip_prefix("env:") {
        let v = std::env::var(var).map_err(|_| {
            Failure::usage(format!(
                "URL #{index}: environment variable {var} is not set"
            ))
        })?;
        (v, Some(format!("env:{var}")))
    } else if let Some(path) = raw.strip_prefix("file:").filter(|p| !p.starts_with("//")) {
        let v = initbox_runtime::input::read_secret(
            std::path::Path::new(path),
            &format!("URL #{index}: file {path}"),
            false,
        )?;
        (v.trim().to_string(), Some(format!("file:{path}")))
    } else {
        (raw.to_string(), None)
    };
    register_url_secrets(&raw);
    register_path_and_query(&raw, false);
    let shown = display(&raw);
    let expanded = expand(&raw).map_err(|why| bad(&shown, why))?;
    register_url_secrets(&expanded);
    register_path_and_query(&expanded, false);
    let shown = match from {
        Some(f) => format!("{f} = {}", display(&expanded)),
        None => shown,
    };
    Ok((expanded, shown))
}

/// Expand `${VAR}`, `${env:VAR}`, `${file:/path}`. A placeholder that is the whole input is
/// inserted as is (it is a URL); inside a URL the value is percent-encoded.
fn expand(raw: &str) -> Result<String, String> {
    if !raw.contains("${") {
        return Ok(raw.to_string());
    }
    let whole = raw.starts_with("${") && raw.ends_with('}') && raw.matches("${").count() == 1;
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "unterminated ${...} placeholder".to_string())?;
        let spec = &after[..end];
        let value = if let Some(path) = spec.strip_prefix("file:") {
            read_secret_file(path, "${file:...}")?
        } else {
            let var = spec.strip_prefix("env:").unwrap_or(spec);
            if var.is_empty() {
                return Err("empty ${} placeholder".into());
            }
            std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))?
        };
        redact::register(&value);
        if whole {
            out.push_str(&value);
        } else {
            out.push_str(&percent_encode(&value));
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

/// Register the secret parts of a URL's authority and query before anything can print it:
/// userinfo, token hosts, secret query values ([`register_path_and_query`] does the path).
/// Works on malformed URLs too.
fn register_url_secrets(url: &str) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return;
    };
    let base = scheme.split('+').next().unwrap_or(scheme);
    let (before_frag, _) = rest.split_once('#').unwrap_or((rest, ""));
    let (before_query, query) = before_frag.split_once('?').unwrap_or((before_frag, ""));
    let authority = before_query.split('/').next().unwrap_or_default();
    let reg = |v: &str| {
        if !v.is_empty() {
            redact::register(v);
            redact::register(&percent_decode(v));
        }
    };
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if let Some(userinfo) = userinfo {
        match userinfo.split_once(':') {
            Some((user, pass)) => {
                reg(pass);
                if USERINFO_SECRET_SCHEMES.contains(&base) {
                    reg(user);
                    reg(userinfo);
                }
            }
            None if USERINFO_SECRET_SCHEMES.contains(&base) => reg(userinfo),
            None => {}
        }
    }
    if HOST_SECRET_SCHEMES.contains(&scheme) {
        reg(host);
        if let Some((_, secret)) = host.split_once(':') {
            reg(secret); // a Telegram bot token's secret half
        }
    }
    if USERINFO_SECRET_SCHEMES.contains(&base) && userinfo.is_some() {
        reg(host); // apprise's pagerduty://INTEGRATION_KEY@API_KEY: the host is a key too
    }
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if SECRET_KEYS.contains(&k.to_ascii_lowercase().as_str()) {
            reg(v);
        }
    }
}

/// Path words of the services' own routes: not credentials, and too common to mask.
const ROUTE_WORDS: &[&str] = &[
    "services",
    "hooks",
    "hook",
    "webhook",
    "webhooks",
    "api",
    "enqueue",
    "workflows",
    "triggers",
    "manual",
    "paths",
    "invoke",
    "spaces",
    "messages",
    "webhookb2",
    "incomingwebhook",
    "sendmessage",
    "notify",
    "events",
];

/// Schemes whose path is not a credential (a file path, a mailbox).
const PLAIN_PATH_SCHEMES: &[&str] = &[
    "file", "stdout", "logger", "smtp", "smtps", "mailto", "mailtos",
];

/// A path segment or query value worth registering: long enough to be a token, not a route
/// word of a known service, not part of the host name (which is shown).
fn secret_part(part: &str, host: &str) -> bool {
    let d = percent_decode(part).to_ascii_lowercase();
    d.len() >= 6 && !ROUTE_WORDS.contains(&d.as_str()) && !host.contains(&d)
}

/// Register a notification URL's path and query as secrets (webhooks carry their credential
/// there): the whole path, the whole query, and each segment and value that can be a token.
/// `all_query`: every query value (the endpoint URL actually requested), not only those of
/// secret keys (the URL as given, whose query also holds notify's own options).
fn register_path_and_query(url: &str, all_query: bool) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return;
    };
    let base = scheme
        .split('+')
        .next()
        .unwrap_or(scheme)
        .to_ascii_lowercase();
    if PLAIN_PATH_SCHEMES.contains(&base.as_str()) {
        return;
    }
    let (before_frag, _) = rest.split_once('#').unwrap_or((rest, ""));
    let (before_query, query) = before_frag.split_once('?').unwrap_or((before_frag, ""));
    let (authority, path) = match before_query.find('/') {
        Some(i) => before_query.split_at(i),
        None => (before_query, ""),
    };
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, h)| h)
        .to_ascii_lowercase();
    let reg = |v: &str| {
        if !v.is_empty() {
            redact::register(v);
            redact::register(&percent_decode(v));
        }
    };
    let segments: Vec<&str> = path.split('/').filter(|s| secret_part(s, &host)).collect();
    let values: Vec<&str> = query
        .split('&')
        .map(|pair| pair.split_once('=').map_or(pair, |(_, v)| v))
        .filter(|v| all_query && secret_part(v, &host))
        .collect();
    // The whole path and query too (a server echoes them back whole), but only when they hold
    // a token: `/hook` alone would mask the `/hook` of `//hooks.example.com`.
    if !segments.is_empty() {
        reg(path);
    }
    if !values.is_empty() {
        reg(query);
        reg(&format!("{path}?{query}"));
    }
    for part in segments.into_iter().chain(values) {
        reg(part);
    }
}

/// A URL as it may be shown: `scheme://host[:port]` only (the runtime's URL display), since a
/// notification URL's path and query are its credential; the host too is masked where it is a
/// token (`slack://TOKEN-A/...`, `tgram://BOT_TOKEN/...`, `discord://TOKEN@WEBHOOK_ID`). Never
/// fails, also for malformed input.
pub fn display(url: &str) -> String {
    let mask = redact::MASK;
    let Some((scheme, rest)) = url.split_once("://") else {
        // Not a URL at all: show only its start, since it may be a bare token.
        let head: String = url.chars().take(8).collect();
        let cut = if url.chars().count() > 8 { "…" } else { "" };
        return redact::scrub(&format!("{head}{cut}")).into_owned();
    };
    let scheme = scheme.to_ascii_lowercase();
    let base = scheme.split('+').next().unwrap_or(&scheme);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if HOST_SECRET_SCHEMES.contains(&base)
        || (USERINFO_SECRET_SCHEMES.contains(&base) && authority.contains('@'))
    {
        return format!("{scheme}://{mask}");
    }
    if matches!(base, "file" | "stdout" | "logger") {
        // A local destination: its path is no credential, and worth seeing.
        return safe_url::display(url);
    }
    safe_url::display_origin(url)
}

thread_local! {
    /// The exit code of a secret file that could not be read while parsing a URL (the
    /// runtime's one secret-file error, 3 or 4), so the URL's error keeps it instead of 2.
    static FILE_CODE: std::cell::Cell<Option<initbox_runtime::Code>> =
        const { std::cell::Cell::new(None) };
}

/// A secret file named in a URL option, read by the runtime's one secret-file rule.
fn read_secret_file(path: &str, what: &str) -> Result<String, String> {
    initbox_runtime::input::read_secret(
        std::path::Path::new(path),
        &format!("{what} {path}"),
        false,
    )
    .map_err(|f| {
        FILE_CODE.set(Some(f.code));
        f.message
    })
}

/// Give `f` the code of a secret file that failed during its parse, if one did.
fn keep_file_code(mut f: Failure) -> Failure {
    if let Some(code) = FILE_CODE.take() {
        f.code = code;
    }
    f
}

/// Parse target argument `raw` (position `index`, 1-based).
pub fn parse(index: usize, raw: &str) -> Result<Target, Failure> {
    FILE_CODE.set(None);
    let (expanded, shown) = resolve_input(index, raw).map_err(keep_file_code)?;
    let bad =
        |why: String| keep_file_code(Failure::usage(format!("URL #{index} '{shown}': {why}")));
    let Some((scheme, _)) = expanded.split_once("://") else {
        return Err(bad(format!(
            "not a URL (expected SCHEME://...; schemes: {SCHEMES})"
        )));
    };
    let scheme = scheme.to_ascii_lowercase();
    // apprise's tgram://123:ABC/CHAT has the bot token where the host goes ("123:ABC" is no
    // host:port): move it into the path before parsing.
    let expanded = match (scheme.as_str(), expanded.split_once("://")) {
        ("tgram", Some((s, rest))) => format!("{s}://bot/{rest}"),
        _ => expanded,
    };
    // apprise writes channels as `#name` in the path (`slack://A/B/C/#general`): in a native
    // service URL `#` starts no fragment, it is part of the path or a value.
    let expanded = if scheme.contains('+') || matches!(scheme.as_str(), "http" | "https" | "file") {
        expanded
    } else {
        expanded.replace('#', "%23")
    };
    let expanded = match scheme.as_str() {
        "rocket" | "rockets" => rocket_webhook_userinfo(&expanded),
        _ => expanded,
    };
    let url = Url::parse(&expanded).map_err(|e| bad(format!("malformed URL: {e}")))?;
    let service = service(&scheme, url).map_err(bad)?;
    if let Service::Http(h) = &service {
        register_path_and_query(h.url.as_str(), true);
    }
    Ok(Target {
        index,
        shown,
        service,
    })
}

fn endpoint_from(scheme_rest: &str, url: &Url) -> Result<Url, String> {
    // `NAME+https://host/path` → `https://host/path` (query handled by the caller).
    let mut s = url.as_str().to_string();
    let plus = s.find('+').ok_or("no endpoint scheme")?;
    s.replace_range(..plus + 1, "");
    let u = Url::parse(&s).map_err(|e| format!("malformed endpoint URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") || scheme_rest.is_empty() {
        return Err(format!(
            "endpoint scheme must be http or https, not '{}'",
            u.scheme()
        ));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err("endpoint has no host".into());
    }
    Ok(u)
}

fn path_segments(url: &Url) -> Vec<String> {
    url.path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect()
}

fn host_port(url: &Url) -> Result<String, String> {
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("no host given")?;
    Ok(match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    })
}

/// `endpoint=` overrides the fixed API host of a service (self-hosted gateway, proxy, tests).
fn endpoint_override(opts: &mut Options, default: &str) -> Result<Url, String> {
    let base = opts
        .take(&["endpoint"])
        .unwrap_or_else(|| default.to_string());
    let u = Url::parse(&base).map_err(|e| format!("option 'endpoint': malformed URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err("option 'endpoint' must be an http or https URL".into());
    }
    Ok(u)
}

fn http(kind: Kind, url: Url) -> Box<Http> {
    Box::new(Http {
        kind,
        url,
        headers: Vec::new(),
        sign: None,
        bearer: None,
        basic: None,
    })
}

/// A native scheme's user information must be one its service reads: a password or user name
/// that would be silently dropped is refused, never guessed at. (`NAME+https://` forms hand it
/// to the endpoint; pagerduty:// has its own, more helpful, refusal.)
fn check_userinfo(base: &str, url: &Url) -> Result<(), String> {
    let (user, password) = match base {
        // slack:// reads shoutrrr's TYPE:TOKEN user information itself.
        "mattermost" | "rocketchat" | "discord" | "mmost" | "mmosts" => (true, false),
        "teams" | "workflows" | "googlechat" | "hangouts" | "gchat" | "tgram" | "stdout"
        | "logger" | "file" => (false, false),
        // Services that read both, pagerduty (its own refusal), unknown schemes (refused later).
        _ => return Ok(()),
    };
    if url.password().is_some() && !password {
        return Err(format!(
            "{base}:// reads no password from the user information (see the documented forms)"
        ));
    }
    if !url.username().is_empty() && !user {
        return Err(format!(
            "{base}:// takes no user information (see the documented forms)"
        ));
    }
    Ok(())
}

fn service(scheme: &str, url: Url) -> Result<Service, String> {
    let mut opts = Options::new(&url);
    let (base, plus) = match scheme.split_once('+') {
        Some((b, rest)) => (b, Some(rest)),
        None => (scheme, None),
    };
    if plus.is_none() {
        check_userinfo(base, &url)?;
    }
    let headers = opts.take_headers();
    let svc = match (base, plus) {
        ("webhook" | "generic" | "cloudevents", Some(rest)) => {
            let endpoint = endpoint_from(rest, &url)?;
            // shoutrrr's generic+https:// sends shoutrrr's body; webhook+ sends initbox's.
            let style = if base == "generic" {
                BodyStyle::ShoutrrrPlain
            } else {
                BodyStyle::Initbox
            };
            webhook(base == "cloudevents", endpoint, &mut opts, true, style)?
        }
        ("generic" | "json" | "jsons" | "form" | "forms" | "xml" | "xmls", None) => {
            let https = match base {
                "json" | "form" | "xml" => false,
                "jsons" | "forms" | "xmls" => true,
                _ => !opts.take_bool(&["disabletls"])?.unwrap_or(false),
            };
            let style = match base {
                "generic" => BodyStyle::ShoutrrrPlain,
                "json" | "jsons" => BodyStyle::AppriseJson,
                "form" | "forms" => BodyStyle::AppriseForm,
                _ => BodyStyle::AppriseXml,
            };
            let hp = host_port(&url)?;
            let s = format!(
                "{}://{hp}{}",
                if https { "https" } else { "http" },
                url.path()
            );
            let endpoint = Url::parse(&s).map_err(|e| e.to_string())?;
            let mut svc = webhook(false, endpoint, &mut opts, true, style)?;
            // apprise json://user:pass@host: Basic auth.
            if let Service::Http(h) = &mut svc
                && !url.username().is_empty()
            {
                h.basic = Some((
                    percent_decode(url.username()),
                    url.password().map(percent_decode).unwrap_or_default(),
                ));
            }
            svc
        }
        ("slack" | "mattermost" | "rocketchat", Some(rest)) => {
            let endpoint = endpoint_from(rest, &url)?;
            let kind = slack_kind(base, &mut opts);
            let mut h = http(kind, endpoint);
            finish_forward(&mut h, &mut opts)?;
            Service::Http(h)
        }
        ("slack", None) => slack_native(&url, &mut opts)?,
        ("mmost" | "mmosts", None) => {
            // apprise: mmost[s]://[BOTNAME@]HOST[:PORT][/PATH]/TOKEN (http; mmosts: https).
            let hp = host_port(&url)?;
            let mut segs = path_segments(&url);
            let Some(token) = segs.pop() else {
                return Err("expected mmost://[BOTNAME@]HOST[:PORT][/PATH]/TOKEN".into());
            };
            redact::register(&token);
            let scheme = if base == "mmosts" { "https" } else { "http" };
            let prefix: String = segs.iter().map(|s| format!("/{s}")).collect();
            let endpoint = Url::parse(&format!("{scheme}://{hp}{prefix}/hooks/{token}"))
                .map_err(|e| e.to_string())?;
            let mut kind = slack_kind("mattermost", &mut opts);
            if let Kind::Slack {
                extra, channels, ..
            } = &mut kind
            {
                if !url.username().is_empty() {
                    extra.push(("username".into(), percent_decode(url.username())));
                }
                if let Some(pos) = extra.iter().position(|(k, _)| k == "channel") {
                    channels.push(extra.remove(pos).1);
                }
                for key in ["channels", "to"] {
                    if let Some(list) = opts.take(&[key]) {
                        channels.extend(
                            list.split([',', ' '])
                                .filter(|c| !c.is_empty())
                                .map(String::from),
                        );
                    }
                }
            }
            let _ = opts.take(&["image"]);
            opts.finish_strict()?;
            Service::Http(http(kind, endpoint))
        }
        ("rocket" | "rockets", None) => {
            // apprise webhook mode: rocket[s]://TOKEN-A/TOKEN-B@HOST[:PORT][/#CHANNEL|@USER…]
            let webhook = percent_decode(url.username());
            let Some((a, b)) = webhook.split_once('/') else {
                return Err("only apprise's webhook form is supported: \
                    rocket://TOKEN-A/TOKEN-B@HOST[:PORT]/#CHANNEL (or rocketchat://HOST/TOKEN-A/TOKEN-B/CHANNEL); \
                    a user name and password log in to the REST API, which notify does not do"
                    .into());
            };
            if url.password().is_some() {
                return Err("expected rocket://TOKEN-A/TOKEN-B@HOST[:PORT]/#CHANNEL".into());
            }
            if opts
                .take(&["mode"])
                .is_some_and(|m| !m.eq_ignore_ascii_case("webhook"))
            {
                return Err(
                    "only mode=webhook is supported (rocket://TOKEN-A/TOKEN-B@HOST/#CHANNEL)"
                        .into(),
                );
            }
            redact::register(&webhook);
            redact::register(b);
            let hp = host_port(&url)?;
            let scheme = if base == "rockets" { "https" } else { "http" };
            let endpoint =
                Url::parse(&format!("{scheme}://{hp}/hooks/{a}/{b}")).map_err(|e| e.to_string())?;
            let mut kind = slack_kind("rocketchat", &mut opts);
            if let Kind::Slack { channels, .. } = &mut kind {
                channels.extend(path_segments(&url));
                if let Some(list) = opts.take(&["to"]) {
                    channels.extend(
                        list.split([',', ' '])
                            .filter(|c| !c.is_empty())
                            .map(String::from),
                    );
                }
            }
            let _ = opts.take(&["avatar"]);
            opts.finish_strict()?;
            Service::Http(http(kind, endpoint))
        }
        ("mattermost", None) => {
            // mattermost://[username@]host[:port]/token[/channel]
            let hp = host_port(&url)?;
            let segs = path_segments(&url);
            let Some(token) = segs.first() else {
                return Err("expected mattermost://[username@]HOST[:PORT]/TOKEN[/CHANNEL]".into());
            };
            let scheme = opts.take(&["scheme"]).unwrap_or_else(|| "https".into());
            let endpoint =
                Url::parse(&format!("{scheme}://{hp}/hooks/{token}")).map_err(|e| e.to_string())?;
            let mut kind = slack_kind("mattermost", &mut opts);
            if let Kind::Slack { extra, .. } = &mut kind {
                if !url.username().is_empty() {
                    extra.push(("username".into(), percent_decode(url.username())));
                }
                if let Some(ch) = segs.get(1) {
                    extra.push(("channel".into(), ch.clone()));
                }
            }
            opts.finish_strict()?;
            Service::Http(http(kind, endpoint))
        }
        ("rocketchat", None) => {
            // rocketchat://[username@]host[:port]/tokenA/tokenB[/channel]
            let hp = host_port(&url)?;
            let segs = path_segments(&url);
            if segs.len() < 2 {
                return Err(
                    "expected rocketchat://[username@]HOST[:PORT]/TOKEN-A/TOKEN-B[/CHANNEL]".into(),
                );
            }
            let scheme = opts.take(&["scheme"]).unwrap_or_else(|| "https".into());
            let endpoint = Url::parse(&format!("{scheme}://{hp}/hooks/{}/{}", segs[0], segs[1]))
                .map_err(|e| e.to_string())?;
            let mut kind = slack_kind("rocketchat", &mut opts);
            if let Kind::Slack { extra, .. } = &mut kind {
                if !url.username().is_empty() {
                    extra.push(("username".into(), percent_decode(url.username())));
                }
                if let Some(ch) = segs.get(2) {
                    extra.push(("channel".into(), ch.clone()));
                }
            }
            opts.finish_strict()?;
            Service::Http(http(kind, endpoint))
        }
        ("teams" | "workflows", Some(rest)) => {
            let endpoint = endpoint_from(rest, &url)?;
            let mut h = http(Kind::Teams, endpoint);
            finish_forward(&mut h, &mut opts)?;
            Service::Http(h)
        }
        ("workflows", None) => {
            // apprise: workflows://host[:port]/WORKFLOW/SIGNATURE
            let hp = host_port(&url)?;
            let segs = path_segments(&url);
            if segs.len() != 2 {
                return Err("expected workflows://HOST[:PORT]/WORKFLOW_ID/SIGNATURE (or teams+https://<the workflow URL>)".into());
            }
            let api = opts
                .take(&["api-version", "ver"])
                .unwrap_or_else(|| "2016-06-01".into());
            let mut endpoint = Url::parse(&format!(
                "https://{hp}/workflows/{}/triggers/manual/paths/invoke",
                segs[0]
            ))
            .map_err(|e| e.to_string())?;
            endpoint
                .query_pairs_mut()
                .append_pair("api-version", &api)
                .append_pair("sp", "/triggers/manual/run")
                .append_pair("sv", "1.0")
                .append_pair("sig", &segs[1]);
            opts.finish_strict()?;
            Service::Http(http(Kind::Teams, endpoint))
        }
        ("teams", None) => {
            return Err("legacy Office 365 connectors are retired: use teams+https://<Power Automate workflow URL> or workflows://HOST/WORKFLOW/SIGNATURE".into());
        }
        ("discord", Some(rest)) => {
            let endpoint = endpoint_from(rest, &url)?;
            let extra = discord_extra(&mut opts);
            let mut h = http(Kind::Discord { extra }, endpoint);
            finish_forward(&mut h, &mut opts)?;
            Service::Http(h)
        }
        ("discord", None) => {
            // shoutrrr: discord://TOKEN@WEBHOOK_ID; apprise: discord://[BOTNAME@]ID/TOKEN.
            let segs = path_segments(&url);
            let (token, id, botname) = match segs.as_slice() {
                [] => (
                    percent_decode(url.username()),
                    url.host_str().unwrap_or_default().to_string(),
                    None,
                ),
                [token] => (
                    token.clone(),
                    url.host_str().unwrap_or_default().to_string(),
                    Some(percent_decode(url.username())).filter(|b| !b.is_empty()),
                ),
                _ => {
                    return Err(
                        "expected discord://TOKEN@WEBHOOK_ID or discord://[BOTNAME@]WEBHOOK_ID/TOKEN"
                            .into(),
                    );
                }
            };
            if token.is_empty() || id.is_empty() {
                return Err(
                    "expected discord://TOKEN@WEBHOOK_ID or discord://[BOTNAME@]WEBHOOK_ID/TOKEN"
                        .into(),
                );
            }
            redact::register(&token);
            let mut endpoint = endpoint_override(&mut opts, "https://discord.com")?;
            endpoint.set_path(&format!("/api/webhooks/{id}/{token}"));
            endpoint.set_query(Some("wait=true"));
            if let Some(thread) = opts.take(&["thread", "thread_id"]) {
                endpoint.query_pairs_mut().append_pair("thread_id", &thread);
            }
            let mut extra = discord_extra(&mut opts);
            if let Some(b) = botname {
                extra.push(("username".into(), b));
            }
            opts.finish_strict()?;
            Service::Http(http(Kind::Discord { extra }, endpoint))
        }
        ("googlechat", Some(rest)) => {
            let endpoint = endpoint_from(rest, &url)?;
            let mut h = http(Kind::GoogleChat, endpoint);
            finish_forward(&mut h, &mut opts)?;
            Service::Http(h)
        }
        ("googlechat" | "hangouts", None) => {
            // shoutrrr: googlechat://chat.googleapis.com/v1/spaces/FOO/messages?key=K&token=T
            let hp = host_port(&url)?;
            let mut endpoint =
                Url::parse(&format!("https://{hp}{}", url.path())).map_err(|e| e.to_string())?;
            let key = opts.take(&["key"]).ok_or("missing option 'key'")?;
            let token = opts.take(&["token"]).ok_or("missing option 'token'")?;
            endpoint
                .query_pairs_mut()
                .append_pair("key", &key)
                .append_pair("token", &token);
            opts.finish_strict()?;
            Service::Http(http(Kind::GoogleChat, endpoint))
        }
        ("gchat", None) => {
            // apprise: gchat://WORKSPACE/KEY/TOKEN
            let ws = url.host_str().unwrap_or_default().to_string();
            let segs = path_segments(&url);
            if ws.is_empty() || segs.len() != 2 {
                return Err("expected gchat://WORKSPACE/KEY/TOKEN".into());
            }
            let mut endpoint = endpoint_override(&mut opts, "https://chat.googleapis.com")?;
            endpoint.set_path(&format!("/v1/spaces/{ws}/messages"));
            endpoint
                .query_pairs_mut()
                .append_pair("key", &segs[0])
                .append_pair("token", &segs[1]);
            opts.finish_strict()?;
            Service::Http(http(Kind::GoogleChat, endpoint))
        }
        ("telegram" | "tgram", None) => {
            let (token, mut chats) = if base == "telegram" {
                // shoutrrr: telegram://TOKEN@telegram?chats=@chan,ID
                let token = match url.password() {
                    Some(p) => format!("{}:{}", percent_decode(url.username()), percent_decode(p)),
                    None => percent_decode(url.username()),
                };
                (token, Vec::new())
            } else {
                // apprise: tgram://BOT_TOKEN/CHAT_ID[/CHAT_ID...], read as tgram://bot/TOKEN/...
                let mut segs = path_segments(&url);
                let token = if segs.is_empty() {
                    String::new()
                } else {
                    segs.remove(0)
                };
                (token, segs)
            };
            if token.is_empty() {
                return Err("missing bot token (telegram://TOKEN@telegram?chats=ID)".into());
            }
            redact::register(&token);
            if let Some((_, secret)) = token.split_once(':') {
                redact::register(secret);
            }
            if let Some(c) = opts.take(&["chats", "chat", "to"]) {
                chats.extend(
                    c.split(',')
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .map(String::from),
                );
            }
            if chats.is_empty() {
                return Err("no chats given (option chats=ID,@channel)".into());
            }
            let silent = opts.take_bool(&["silent"])?.unwrap_or(false)
                || opts.take_bool(&["notification"])?.is_some_and(|n| !n);
            let endpoint = endpoint_override(&mut opts, "https://api.telegram.org")?;
            let _ = opts.take(&["parsemode", "preview"]);
            opts.finish_strict()?;
            Service::Http(http(
                Kind::Telegram {
                    token,
                    chats,
                    silent,
                },
                endpoint,
            ))
        }
        ("ntfy" | "ntfys", None) => {
            // ntfy://[user:pass@]host[:port]/topic (https unless scheme=http)
            let segs = path_segments(&url);
            // apprise's ntfy://TOPIC: the topic on ntfy.sh.
            let cloud = segs.is_empty()
                && url.username().is_empty()
                && url.port().is_none()
                && !url.host_str().unwrap_or_default().contains('.');
            let hp = if cloud {
                "ntfy.sh".to_string()
            } else {
                host_port(&url)?
            };
            let topic = match segs.as_slice() {
                [] if cloud => url.host_str().unwrap_or_default().to_string(),
                [topic] => topic.clone(),
                [] => {
                    return Err(
                        "expected ntfy://[USER:PASS@]HOST[:PORT]/TOPIC or ntfy://TOPIC".into(),
                    );
                }
                _ => {
                    // shoutrrr reads /PREFIX/TOPIC, apprise /TOPIC1/TOPIC2: never guess.
                    return Err("a path of several parts is a path prefix to shoutrrr and \
                        several topics to apprise: give one URL per topic \
                        (ntfy://HOST/TOPIC), and endpoint=https://HOST/PREFIX/ for a prefix"
                        .into());
                }
            };
            let prefix = String::new();
            let scheme = match opts.take(&["scheme"]) {
                Some(s) if s == "http" || s == "https" => s,
                Some(s) => return Err(format!("option 'scheme' must be http or https, not '{s}'")),
                None => "https".into(),
            };
            let endpoint = endpoint_override(
                &mut opts,
                &format!(
                    "{scheme}://{hp}/{prefix}{}",
                    if prefix.is_empty() { "" } else { "/" }
                ),
            )?;
            let priority = match opts.take(&["priority", "prio"]) {
                None => None,
                Some(p) => Some(ntfy_priority(&p)?),
            };
            let tags = opts
                .take(&["tags", "tag"])
                .map(|t| {
                    t.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            let click = opts.take(&["click"]);
            let icon = opts.take(&["icon", "avatar_url"]);
            let _ = opts.take(&["image", "avatar"]); // apprise: its own logo, or none
            let markdown = opts.take_bool(&["markdown", "md"])?.unwrap_or(false);
            let mut h = http(
                Kind::Ntfy {
                    topic,
                    priority,
                    tags,
                    click,
                    icon,
                    markdown,
                },
                endpoint,
            );
            let user = percent_decode(url.username());
            h.bearer = opts.take_secret("token")?;
            if user.starts_with("tk_") && url.password().is_none() {
                // apprise: ntfy://tk_TOKEN@HOST/TOPIC is an access token.
                redact::register(&user);
                h.bearer = Some(user);
            } else if !user.is_empty() {
                let pass = url.password().map(percent_decode).unwrap_or_default();
                h.basic = Some((user, pass));
            }
            h.headers = headers;
            opts.finish_strict()?;
            return Ok(Service::Http(h));
        }
        ("pagerduty", plus) => {
            let mut headers = headers;
            let mut path_defaults: (Option<String>, Option<String>) = (None, None);
            let (endpoint, key_from_url) = match plus {
                Some(rest) => (endpoint_from(rest, &url)?, None),
                None if !url.username().is_empty() => {
                    // apprise: pagerduty://INTEGRATION_KEY@API_KEY[/SOURCE[/COMPONENT]]
                    // (the API key as the host), Events API v2 in region us or eu.
                    if url.password().is_some() {
                        return Err(
                            "expected pagerduty://INTEGRATION_KEY@API_KEY[/SOURCE[/COMPONENT]]"
                                .into(),
                        );
                    }
                    let api_key = percent_decode(url.host_str().unwrap_or_default());
                    if api_key.is_empty() {
                        return Err(
                            "expected pagerduty://INTEGRATION_KEY@API_KEY[/SOURCE[/COMPONENT]]"
                                .into(),
                        );
                    }
                    redact::register(&api_key);
                    headers.push(("Authorization".into(), format!("Token token={api_key}")));
                    let mut segs = path_segments(&url).into_iter();
                    path_defaults = (segs.next(), segs.next());
                    if segs.next().is_some() {
                        return Err(
                            "expected pagerduty://INTEGRATION_KEY@API_KEY[/SOURCE[/COMPONENT]]"
                                .into(),
                        );
                    }
                    let host = match opts
                        .take(&["region"])
                        .map(|r| r.to_ascii_lowercase())
                        .as_deref()
                    {
                        None | Some("us") => "events.pagerduty.com",
                        Some("eu") => "events.eu.pagerduty.com",
                        Some(r) => {
                            return Err(format!("option 'region' must be us or eu, not '{r}'"));
                        }
                    };
                    let mut e =
                        endpoint_override(&mut opts, &format!("https://{host}/v2/enqueue"))?;
                    if e.path() == "/" {
                        e.set_path("/v2/enqueue");
                    }
                    let _ = opts.take(&["image"]);
                    (e, Some(percent_decode(url.username())))
                }
                None => {
                    // shoutrrr: pagerduty://[HOST[:PORT]]/ROUTING_KEY.
                    let segs = path_segments(&url);
                    let key = segs.first().cloned();
                    let host = url.host_str().filter(|h| !h.is_empty());
                    let default = match host {
                        Some(_) => format!("https://{}/v2/enqueue", host_port(&url)?),
                        None => "https://events.pagerduty.com/v2/enqueue".to_string(),
                    };
                    let mut e = endpoint_override(&mut opts, &default)?;
                    if e.path() == "/" {
                        e.set_path("/v2/enqueue");
                    }
                    (e, key)
                }
            };
            let routing_key = match key_from_url {
                Some(k) => k,
                None => opts
                    .take_secret("routing_key")?
                    .or(opts.take_secret("integration_key")?)
                    .ok_or("missing routing key (pagerduty://events.pagerduty.com/ROUTING_KEY)")?,
            };
            redact::register(&routing_key);
            let severity = opts.take(&["severity"]).unwrap_or_else(|| "error".into());
            if !matches!(severity.as_str(), "critical" | "error" | "warning" | "info") {
                return Err(format!(
                    "option 'severity' must be critical, error, warning or info, not '{severity}'"
                ));
            }
            let action = match opts.take(&["action", "event_action"]).as_deref() {
                None | Some("auto") => PdAction::Auto,
                Some("trigger") => PdAction::Trigger,
                Some("resolve") => PdAction::Resolve,
                Some(a) => {
                    return Err(format!(
                        "option 'action' must be trigger, resolve or auto, not '{a}'"
                    ));
                }
            };
            let kind = Kind::PagerDuty {
                routing_key,
                severity,
                source: opts.take(&["source"]).or(path_defaults.0),
                component: opts.take(&["component"]).or(path_defaults.1),
                group: opts.take(&["group"]),
                class: opts.take(&["class"]),
                action,
                dedup_key: opts.take(&["dedup_key", "dedupkey"]),
            };
            let mut h = http(kind, endpoint);
            h.headers = headers;
            if plus.is_some() {
                opts.forward(&mut h.url);
            } else {
                opts.finish_strict()?;
            }
            return Ok(Service::Http(h));
        }
        ("smtp" | "smtps" | "mailto" | "mailtos", None) => return smtp(base, &url, &mut opts),
        ("http" | "https", None) => {
            // A bare webhook URL of a well-known service is sent in that service's format.
            let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
            let kind = if host == "hooks.slack.com" {
                slack_kind("slack", &mut opts)
            } else if (host == "discord.com" || host == "discordapp.com")
                && url.path().starts_with("/api/webhooks/")
            {
                Kind::Discord { extra: Vec::new() }
            } else if host == "chat.googleapis.com" {
                Kind::GoogleChat
            } else if host.ends_with(".logic.azure.com") || host.ends_with(".powerplatform.com") {
                Kind::Teams
            } else {
                return Err(format!(
                    "a bare {scheme} URL does not say which service it is: use \
                     webhook+{scheme}://... for a generic webhook, or slack+, teams+, discord+, \
                     googlechat+, mattermost+, cloudevents+{scheme}://..."
                ));
            };
            let mut h = http(kind, url.clone());
            h.url = url;
            opts.forward(&mut h.url);
            Service::Http(h)
        }
        ("stdout" | "logger", None) => {
            opts.finish_strict()?;
            Service::Stdout
        }
        ("file", None) => {
            let path = url
                .to_file_path()
                .map_err(|_| "expected file:///ABSOLUTE/PATH".to_string())?;
            opts.finish_strict()?;
            Service::File(path)
        }
        _ => {
            return Err(format!("unknown scheme '{scheme}' (known: {SCHEMES})"));
        }
    };
    let mut svc = svc;
    if let Service::Http(h) = &mut svc {
        let mut all = headers;
        all.append(&mut h.headers);
        h.headers = all;
    }
    Ok(svc)
}

/// One part of a shoutrrr Slack token: at least `min` characters of `[A-Z0-9]` (or any ASCII
/// letter or digit for the last part).
fn token_part(s: &str, min: usize, lower: bool) -> bool {
    s.len() >= min
        && s.bytes().all(|b| {
            b.is_ascii_digit() || b.is_ascii_uppercase() || (lower && b.is_ascii_lowercase())
        })
}

/// shoutrrr's Slack token `TYPE:P1-P2-P3` (`hook` or `xox?`; separators `-`, `/` or `,`, the
/// same twice): the type and the three parts.
fn shoutrrr_slack_token(token: &str) -> Option<(String, [String; 3])> {
    let (kind, rest) = token.split_once([':', '-'])?;
    if !(kind == "hook" || (kind.len() == 4 && kind.starts_with("xox"))) {
        return None;
    }
    let sep = rest.chars().find(|c| matches!(c, '-' | '/' | ','))?;
    let parts: Vec<&str> = rest.splitn(3, sep).collect();
    let [a, b, c] = parts.as_slice() else {
        return None;
    };
    (token_part(a, 9, false) && token_part(b, 9, false) && token_part(c, 24, true)).then(|| {
        (
            kind.to_string(),
            [a.to_string(), b.to_string(), c.to_string()],
        )
    })
}

/// apprise's Slack target: `+ID` is an id, `@user` a user, anything else a `#channel`.
fn apprise_slack_target(t: &str) -> String {
    if let Some(id) = t.strip_prefix('+') {
        id.to_string()
    } else if t.starts_with('@') || t.starts_with('#') {
        t.to_string()
    } else {
        format!("#{t}")
    }
}

/// `slack://` as shoutrrr (`hook:TOKEN@webhook`, `xoxb:TOKEN@CHANNEL`, the legacy
/// `[botname@]A/B/C`) and apprise (`[botname@]A/B/C[/#channel…]`, `[botname@]xoxb-…/#channel`)
/// write it.
fn slack_native(url: &Url, opts: &mut Options) -> Result<Service, String> {
    const FORMS: &str = "expected slack://hook:TOKEN@webhook, slack://xoxb:TOKEN@CHANNEL, \
        slack://[BOTNAME@]TOKEN-A/TOKEN-B/TOKEN-C[/#CHANNEL], slack://[BOTNAME@]xoxb-TOKEN/#CHANNEL \
        or slack+https://hooks.slack.com/services/...";
    let host = percent_decode(url.host_str().unwrap_or_default());
    let segs = path_segments(url);
    let user = percent_decode(url.username());
    let mut kind = slack_kind("slack", opts);
    let Kind::Slack {
        extra,
        channels,
        api,
        ..
    } = &mut kind
    else {
        unreachable!("slack_kind makes a Slack kind")
    };
    let api_base = |opts: &mut Options| endpoint_override(opts, "https://slack.com");
    let mut bearer = None;
    let endpoint;
    if let Some(pass) = url.password() {
        // shoutrrr: the token in the user information, the channel as the host.
        if !segs.is_empty() {
            return Err(format!(
                "a token in the user information takes no path ({FORMS})"
            ));
        }
        let raw = format!("{user}:{}", percent_decode(pass));
        let Some((kind_id, parts)) = shoutrrr_slack_token(&raw) else {
            return Err(format!("not a Slack token ({FORMS})"));
        };
        if kind_id == "hook" {
            let mut e = endpoint_override(opts, "https://hooks.slack.com")?;
            e.set_path(&format!("/services/{}", parts.join("/")));
            endpoint = e;
            if !host.is_empty() && !host.eq_ignore_ascii_case("webhook") {
                channels.push(host);
            }
        } else {
            if host.is_empty() || host.eq_ignore_ascii_case("webhook") {
                return Err(format!(
                    "a Slack API token needs a channel: slack://{kind_id}:TOKEN@CHANNEL"
                ));
            }
            let token = format!("{kind_id}-{}", parts.join("-"));
            redact::register(&token);
            bearer = Some(token);
            let mut e = api_base(opts)?;
            e.set_path("/api/chat.postMessage");
            endpoint = e;
            *api = true;
            channels.push(host);
        }
    } else {
        if !user.is_empty() {
            extra.push(("username".into(), user));
        }
        let mut targets: Vec<String> = Vec::new();
        let rest = if host.starts_with("xo") {
            // apprise bot: the token as the host, channels as the path.
            redact::register(&host);
            bearer = Some(host.clone());
            let mut e = api_base(opts)?;
            e.set_path("/api/chat.postMessage");
            endpoint = e;
            *api = true;
            segs
        } else {
            let mut tokens = vec![host];
            tokens.extend(segs);
            tokens.retain(|t| !t.is_empty());
            if tokens.len() < 3 {
                return Err(format!("three webhook tokens needed; {FORMS}"));
            }
            let rest = tokens.split_off(3);
            let mut e = endpoint_override(opts, "https://hooks.slack.com")?;
            e.set_path(&format!("/services/{}", tokens.join("/")));
            endpoint = e;
            rest
        };
        targets.extend(rest);
        if let Some(to) = opts.take(&["to"]) {
            targets.extend(
                to.split([' ', '\t', ',', '#', '\\', '/'])
                    .filter(|t| !t.is_empty())
                    .map(|t| format!("#{t}")),
            );
        }
        channels.extend(targets.iter().map(|t| apprise_slack_target(t)));
        if *api && channels.is_empty() {
            channels.push("#general".into()); // apprise's default for a bot
        }
    }
    // A `channel=` option (initbox) names one more channel.
    if let Some(pos) = extra.iter().position(|(k, _)| k == "channel") {
        let (_, c) = extra.remove(pos);
        channels.push(c);
    }
    if let Some(ts) = opts.take(&["thread_ts"]) {
        extra.push(("thread_ts".into(), ts));
    }
    // Cosmetic options with no initbox equivalent (apprise's footer/image, shoutrrr's color).
    let _ = opts.take(&["footer", "image", "timestamp", "blocks", "color"]);
    if let Some(icon) = opts.take(&["icon"]) {
        let key = if icon.starts_with("http://") || icon.starts_with("https://") {
            "icon_url"
        } else {
            "icon_emoji"
        };
        extra.push((key.into(), icon));
    }
    opts.finish_strict()?;
    let mut h = http(kind, endpoint);
    h.bearer = bearer;
    Ok(Service::Http(h))
}

/// apprise's rocket://[USER:]TOKEN-A/TOKEN-B@HOST/...: the webhook's `/` is no path; move the
/// webhook into the user information, percent-encoded (`TOKEN-A%2FTOKEN-B@HOST`).
fn rocket_webhook_userinfo(raw: &str) -> String {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return raw.to_string();
    };
    let Some(at) = rest.find('@') else {
        return raw.to_string();
    };
    let (webhook, host) = rest.split_at(at);
    let webhook = webhook.rsplit_once(':').map_or(webhook, |(_, w)| w);
    let webhook = webhook.replace("%2F", "/").replace("%2f", "/");
    match webhook.split_once('/') {
        Some((a, b))
            if !a.is_empty()
                && !b.is_empty()
                && a.bytes()
                    .chain(b.bytes())
                    .all(|c| c.is_ascii_alphanumeric()) =>
        {
            format!("{scheme}://{a}%2F{b}{host}")
        }
        _ => raw.to_string(),
    }
}

fn slack_kind(base: &str, opts: &mut Options) -> Kind {
    let mut extra = Vec::new();
    for key in ["channel", "username", "icon_emoji", "icon_url"] {
        if let Some(v) = opts.take(&[key]) {
            extra.push((key.to_string(), v));
        }
    }
    if let Some(v) = opts.take(&["botname"]) {
        extra.push(("username".into(), v));
    }
    Kind::Slack {
        markdown_bold: if base == "slack" { "*" } else { "**" },
        extra,
        blocks: base == "slack",
        channels: Vec::new(),
        api: false,
    }
}

fn discord_extra(opts: &mut Options) -> Vec<(String, String)> {
    let mut extra = Vec::new();
    for key in ["username", "avatar_url"] {
        if let Some(v) = opts.take(&[key]) {
            extra.push((key.to_string(), v));
        }
    }
    if let Some(v) = opts.take(&["botname"]) {
        extra.push(("username".into(), v)); // apprise
    }
    // shoutrrr's avatar=URL; apprise's avatar=yes|no only shows its own logo.
    if let Some(v) = opts.take(&["avatar"])
        && (v.starts_with("https://") || v.starts_with("http://"))
    {
        extra.push(("avatar_url".into(), v));
    }
    let _ = opts.take(&["footer", "footer_logo", "image", "color", "colour"]);
    extra
}

/// `NAME+https://` forms: our options are consumed, the rest is the endpoint's own query.
fn finish_forward(h: &mut Http, opts: &mut Options) -> Result<(), String> {
    h.bearer = opts.take_secret("token_bearer")?;
    opts.forward(&mut h.url);
    Ok(())
}

fn ntfy_priority(p: &str) -> Result<u8, String> {
    Ok(match p.to_ascii_lowercase().as_str() {
        "1" | "min" => 1,
        "2" | "low" => 2,
        "3" | "default" => 3,
        "4" | "high" => 4,
        "5" | "max" | "urgent" => 5,
        _ => {
            return Err(format!(
                "option 'priority' must be 1-5 or min..max, not '{p}'"
            ));
        }
    })
}

fn webhook(
    cloudevents: bool,
    mut endpoint: Url,
    opts: &mut Options,
    forward: bool,
    style: BodyStyle,
) -> Result<Service, String> {
    let style = match opts.take(&["template"]) {
        None => style,
        Some(t) => BodyStyle::from_template(&t).ok_or_else(|| {
            format!(
                "option 'template' must be json (shoutrrr's title/message object), message \
                 (the text alone), apprise-json, apprise-form, apprise-xml or initbox, not '{t}'"
            )
        })?,
    };
    if cloudevents && style != BodyStyle::Initbox {
        return Err("option 'template' does not apply to cloudevents targets".into());
    }
    let method = opts
        .take(&["method", "requestmethod"])
        .map(|m| m.to_ascii_uppercase())
        .unwrap_or_else(|| "POST".into());
    if !matches!(method.as_str(), "POST" | "PUT" | "PATCH" | "GET" | "DELETE") {
        return Err(format!(
            "option 'method' must be POST, PUT, PATCH, GET or DELETE, not '{method}'"
        ));
    }
    let content_type = opts
        .take(&["contenttype", "content_type", "content-type"])
        .unwrap_or_else(|| style.content_type().into());
    let title_key = opts.take(&["titlekey"]).unwrap_or_else(|| "title".into());
    let message_key = opts
        .take(&["messagekey"])
        .unwrap_or_else(|| "message".into());
    let extra = opts.take_extra();
    let ce_mode = opts.take(&["cloudevents", "ce_mode", "mode"]);
    let cloudevents = match (cloudevents, ce_mode.as_deref()) {
        (_, Some("structured")) | (true, None) => Some(CeMode::Structured),
        (_, Some("binary")) => Some(CeMode::Binary),
        (false, None) => None,
        (_, Some(m)) => {
            return Err(format!(
                "option 'cloudevents' must be structured or binary, not '{m}'"
            ));
        }
    }
    .map(|mode| CloudEvents {
        mode,
        event_type: None,
        source: None,
    });
    let cloudevents = match cloudevents {
        Some(mut ce) => {
            ce.event_type = opts.take(&["ce_type", "type"]);
            ce.source = opts.take(&["ce_source", "source"]);
            Some(ce)
        }
        None => None,
    };
    let sign_scheme = match opts.take(&["sign"]).as_deref() {
        None => None,
        Some("github" | "sha256" | "hmac-sha256") => Some(SignScheme::Github),
        Some("standard-webhooks" | "standard" | "svix") => Some(SignScheme::StandardWebhooks),
        Some(s) => {
            return Err(format!(
                "option 'sign' must be github or standard-webhooks, not '{s}'"
            ));
        }
    };
    let secret = opts.take_secret("secret")?;
    let signature_header = opts.take(&["signature_header"]);
    let sign = match (sign_scheme, secret) {
        (None, None) => None,
        (Some(_), None) => {
            return Err("option 'sign' needs secret_file=PATH (or secret_env=VAR)".into());
        }
        (scheme, Some(secret)) => {
            let scheme = scheme.unwrap_or(SignScheme::Github);
            let secret = match scheme {
                SignScheme::Github => secret.into_bytes(),
                SignScheme::StandardWebhooks => {
                    use base64::Engine;
                    let b64 = secret.strip_prefix("whsec_").unwrap_or(&secret);
                    base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .map_err(|_| {
                            "a standard-webhooks secret must be whsec_<base64>".to_string()
                        })?
                }
            };
            Some(Sign {
                scheme,
                secret,
                header: signature_header.unwrap_or_else(|| match scheme {
                    SignScheme::Github => "X-Hub-Signature-256".into(),
                    SignScheme::StandardWebhooks => "webhook-signature".into(),
                }),
            })
        }
    };
    let bearer = opts.take_secret("token")?;
    let kind = Kind::Webhook {
        method,
        content_type,
        title_key,
        message_key,
        extra,
        cloudevents,
        style,
    };
    if style.is_apprise() {
        // apprise: `-key=value` are the endpoint's query parameters; nothing else is forwarded.
        let params = opts.take_prefixed(['-', '-']);
        opts.finish_strict()?;
        let mut q = endpoint.query_pairs_mut();
        for (k, v) in &params {
            q.append_pair(k, v);
        }
        drop(q);
        if endpoint.query() == Some("") {
            endpoint.set_query(None);
        }
    } else if forward {
        opts.forward(&mut endpoint);
    } else {
        opts.finish_strict()?;
    }
    let mut h = http(kind, endpoint);
    h.sign = sign;
    h.bearer = bearer;
    Ok(Service::Http(h))
}

fn smtp(base: &str, url: &Url, opts: &mut Options) -> Result<Service, String> {
    let implicit_scheme = base.ends_with('s');
    let mailto = base.starts_with("mailto");
    let mut host = url.host_str().unwrap_or_default().to_string();
    let smtp_host = opts.take(&["smtp", "host"]);
    // apprise: the sender is USER@DOMAIN (or the user when it is an address); without smtp=,
    // a known mail provider of that domain gives the server, port, TLS mode and login.
    let url_user = percent_decode(url.username());
    let mailto_from = (mailto && !url_user.is_empty()).then(|| {
        if url_user.contains('@') {
            url_user.clone()
        } else {
            format!("{url_user}@{host}")
        }
    });
    let provider = match (&mailto_from, &smtp_host) {
        (Some(from), None) => from
            .rsplit_once('@')
            .and_then(|(_, d)| crate::mail_providers::provider(d)),
        _ => None,
    };
    if let Some(p) = &provider {
        host = p.host.to_string();
    }
    if let Some(h) = smtp_host {
        host = h; // apprise mailto://user:pass@domain?smtp=HOST
    }
    if host.is_empty() {
        return Err("no SMTP host given".into());
    }
    let tls = match opts
        .take(&["tls", "encryption", "mode", "secure"])
        .map(|s| s.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("auto") => None,
        Some("implicit" | "implicittls" | "ssl" | "tls" | "wrapper") => Some(SmtpTls::Implicit),
        Some("starttls" | "explicittls" | "required" | "explicit") => Some(SmtpTls::StartTls),
        Some("none" | "off" | "plain" | "insecure") => Some(SmtpTls::None),
        Some(t) => {
            return Err(format!(
                "option 'tls' must be implicit, starttls or none, not '{t}'"
            ));
        }
    };
    if let Some(false) = opts.take_bool(&["usestarttls"])?
        && tls.is_none()
    {
        return Err("usestarttls=no: say tls=implicit or tls=none explicitly".into());
    }
    // apprise's mailto defaults: a provider's own, else mailto:// plain on 25 and mailtos://
    // STARTTLS on 587 (a password in clear text is then refused below, never sent).
    let tls = match (mailto, tls, &provider) {
        (true, None, Some(p)) if url.port().is_none() => Some(p.tls),
        (true, None, _) if implicit_scheme => Some(SmtpTls::StartTls),
        (true, None, _) => Some(SmtpTls::None),
        (_, tls, _) => tls,
    };
    let port = match opts.take(&["port"]) {
        Some(p) => p
            .parse()
            .map_err(|_| format!("option 'port': '{p}' is not a port"))?,
        None if mailto && url.port().is_none() => match (&provider, tls) {
            (Some(p), Some(t)) if t == p.tls => p.port,
            (_, Some(SmtpTls::Implicit)) => 465,
            (_, Some(SmtpTls::StartTls)) => 587,
            _ => 25,
        },
        None => url.port().unwrap_or(match tls {
            Some(SmtpTls::Implicit) => 465,
            Some(_) => 587,
            None if implicit_scheme => 465,
            None => 587,
        }),
    };
    let tls = tls.unwrap_or(if implicit_scheme || port == 465 {
        SmtpTls::Implicit
    } else {
        SmtpTls::StartTls
    });
    let user = match (&provider, &mailto_from) {
        (Some(p), Some(from)) => match p.login {
            crate::mail_providers::Login::Email => Some(from.clone()),
            crate::mail_providers::Login::UserId => from.split('@').next().map(String::from),
            crate::mail_providers::Login::AsGiven => Some(url_user.clone()),
        },
        _ => Some(url_user.clone()).filter(|u| !u.is_empty()),
    };
    let mut password = url.password().map(percent_decode);
    if let Some(p) = opts.take_secret("password")? {
        password = Some(p);
    }
    if let Some(p) = &password {
        redact::register(p);
    }
    // apprise logs in only with a password: mailto://ops@host names the sender, not a login.
    let user = if mailto && password.is_none() {
        None
    } else {
        user
    };
    let _ = opts.take(&["auth"]);
    let to: Vec<String> = opts
        .take(&["to", "toaddresses"])
        .map(|t| {
            t.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    // apprise mails the sender itself when no recipient is given.
    let to = match (&mailto_from, to.is_empty()) {
        (Some(from), true) => vec![from.clone()],
        _ => to,
    };
    if to.is_empty() {
        return Err("no recipients (option to=a@example.com,b@example.com)".into());
    }
    let from = opts
        .take(&["from", "fromaddress"])
        .or_else(|| user.clone().filter(|u| u.contains('@')))
        .or_else(|| mailto_from.clone())
        .ok_or("no sender (option from=initbox@example.com)")?;
    let allow_plain_auth = opts.take_bool(&["allow_plain_auth"])?.unwrap_or(false);
    // A password is never sent in clear text over the network unless asked for: AUTH without
    // TLS only to a loopback address (as Go's net/smtp PlainAuth, which shoutrrr uses) or with
    // allow_plain_auth=true.
    if tls == SmtpTls::None && user.is_some() && !allow_plain_auth && !is_loopback(&host) {
        let why = if mailto && !implicit_scheme {
            " (mailto:// to a server apprise knows no provider for is plain SMTP on port 25, \
             as in apprise)"
        } else {
            ""
        };
        return Err(format!(
            "tls=none would send the password in clear text to {host}{why}: use mailtos://, \
             tls=starttls or tls=implicit, or add allow_plain_auth=true if the network is trusted"
        ));
    }
    let helo = opts.take(&["helo", "clienthost", "hostname"]);
    let _ = opts.take(&["fromname", "name", "subject", "usehtml"]);
    opts.finish_strict()?;
    Ok(Service::Smtp(Smtp {
        host,
        port,
        tls,
        user,
        password,
        from,
        to,
        helo,
    }))
}

/// `localhost`, `*.localhost` (RFC 6761), 127.0.0.0/8 or ::1.
fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or_else(|_| {
            let h = h.trim_end_matches('.').to_ascii_lowercase();
            h == "localhost" || h.ends_with(".localhost")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http_of(t: &Target) -> &Http {
        match &t.service {
            Service::Http(h) => h,
            other => panic!("not http: {other:?}"),
        }
    }

    #[test]
    fn webhook_forwards_unknown_query_and_reads_options() {
        let t = parse(1, "webhook+https://hooks.example.com/in?method=put&@X-Env=prod&code=abc123&sign=github&secret=s3cr3t-value").unwrap();
        let h = http_of(&t);
        assert_eq!(h.url.as_str(), "https://hooks.example.com/in?code=abc123");
        assert!(matches!(&h.kind, Kind::Webhook { method, .. } if method == "PUT"));
        assert_eq!(h.headers, vec![("X-Env".to_string(), "prod".to_string())]);
        assert_eq!(h.sign.as_ref().unwrap().header, "X-Hub-Signature-256");
        assert!(!t.shown.contains("abc123"), "{}", t.shown);
        assert!(!t.shown.contains("s3cr3t-value"), "{}", t.shown);
    }

    #[test]
    fn bare_urls_of_known_services() {
        let t = parse(1, "https://hooks.slack.com/services/T0/B0/XyZsecretXyZ").unwrap();
        assert_eq!(t.service.name(), "slack");
        assert!(!t.shown.contains("XyZsecretXyZ"), "{}", t.shown);
        let t = parse(2, "https://discord.com/api/webhooks/1/abcdefgh").unwrap();
        assert_eq!(t.service.name(), "discord");
        let t = parse(3, "https://prod-1.westeurope.logic.azure.com:443/workflows/x/triggers/manual/paths/invoke?sig=abc").unwrap();
        assert_eq!(t.service.name(), "teams");
        let f = parse(4, "https://example.com/hook").unwrap_err();
        assert!(f.message.contains("webhook+https://"), "{f}");
    }

    #[test]
    fn shoutrrr_and_apprise_forms() {
        let t = parse(1, "slack://bot@T000AAAA/B000BBBB/XXXXXXXXXXXXXXXX").unwrap();
        assert_eq!(
            http_of(&t).url.as_str(),
            "https://hooks.slack.com/services/T000AAAA/B000BBBB/XXXXXXXXXXXXXXXX"
        );
        assert!(!t.shown.contains("XXXXXXXXXXXXXXXX"), "{}", t.shown);
        let t = parse(2, "discord://tok-en-123456@987654").unwrap();
        assert_eq!(
            http_of(&t).url.as_str(),
            "https://discord.com/api/webhooks/987654/tok-en-123456?wait=true"
        );
        let t = parse(3, "telegram://123456:ABCdef@telegram?chats=@chan,42").unwrap();
        match &http_of(&t).kind {
            Kind::Telegram { token, chats, .. } => {
                assert_eq!(token, "123456:ABCdef");
                assert_eq!(chats, &vec!["@chan".to_string(), "42".to_string()]);
            }
            k => panic!("{k:?}"),
        }
        let t = parse(
            4,
            "workflows://prod-01.westus.logic.azure.com:443/abc/sigSIGsig",
        )
        .unwrap();
        let u = http_of(&t).url.as_str().to_string();
        assert!(u.starts_with("https://prod-01.westus.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01"), "{u}");
        assert!(u.ends_with("sig=sigSIGsig"), "{u}");
        let t = parse(
            5,
            "ntfy://ntfy.example.com/alerts?priority=high&tags=warning,skull",
        )
        .unwrap();
        assert!(
            matches!(&http_of(&t).kind, Kind::Ntfy { topic, priority: Some(4), .. } if topic == "alerts")
        );
        let t = parse(6, "pagerduty:///R0UTINGKEY0123?severity=critical").unwrap();
        assert_eq!(
            http_of(&t).url.as_str(),
            "https://events.pagerduty.com/v2/enqueue"
        );
    }

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "LOCALHOST.",
            "mail.localhost",
            "127.0.0.1",
            "127.1.2.3",
            "[::1]",
            "::1",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "mail.example.com",
            "10.0.0.1",
            "localhost.example.com",
            "[::2]",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn smtp_tls_defaults_follow_the_port() {
        let s = |u: &str| match parse(1, u).unwrap().service {
            Service::Smtp(s) => s,
            _ => panic!(),
        };
        let a = s("smtp://me%40x.org:p%40ss@mail.x.org/?to=a@x.org");
        assert_eq!((a.port, a.tls), (587, SmtpTls::StartTls));
        assert_eq!(a.password.as_deref(), Some("p@ss"));
        assert_eq!(a.from, "me@x.org");
        let b = s("smtps://mail.x.org?to=a@x.org&from=b@x.org");
        assert_eq!((b.port, b.tls), (465, SmtpTls::Implicit));
        let c = s("smtp://mail.x.org:465?to=a@x.org&from=b@x.org");
        assert_eq!(c.tls, SmtpTls::Implicit);
    }

    #[test]
    fn errors_are_usage_and_hide_secrets() {
        let f = parse(1, "slack://bot@only-one-token-S3CRETVALUE").unwrap_err();
        assert_eq!(f.code, initbox_runtime::Code::USAGE);
        assert!(!f.to_string().contains("S3CRETVALUE"), "{f}");
        let f = parse(2, "smtp://user:hunter2pass@:99999/?to=a").unwrap_err();
        assert!(!f.to_string().contains("hunter2pass"), "{f}");
        let f = parse(3, "bogus://x").unwrap_err();
        assert!(f.message.contains("unknown scheme 'bogus'"), "{f}");
        let f = parse(4, "ntfy://h/topic?colour=red").unwrap_err();
        assert!(f.message.contains("unknown option 'colour'"), "{f}");
    }

    #[test]
    fn secrets_of_every_form_are_masked_and_registered() {
        let cases = [
            ("slack://T0AAAAAA/B0BBBBBB/Sl4ckSecretTok", "Sl4ckSecretTok"),
            ("discord://D1scordSecret@1234", "D1scordSecret"),
            (
                "telegram://111:T3legramSecret@telegram?chats=1",
                "T3legramSecret",
            ),
            ("tgram://222:T3gramBotSecret/99", "T3gramBotSecret"),
            (
                "workflows://h.logic.azure.com/wf/W0rkflowSigSecret",
                "W0rkflowSigSecret",
            ),
            ("gchat://space/GchatKey123/GchatTok456", "GchatTok456"),
            ("pagerduty:///Pag3rDutyRoutingKey", "Pag3rDutyRoutingKey"),
            ("ntfy://u:Ntfy-pass-9@h/t", "Ntfy-pass-9"),
            ("smtp://u:Smtp-pass-9@h?to=a@b.c&from=c@d.e", "Smtp-pass-9"),
            (
                "webhook+https://h/x?token=W3bhookTok&code=AzureC0de",
                "AzureC0de",
            ),
            (
                "teams+https://h.logic.azure.com/x?sig=TeamsS1gValue",
                "TeamsS1gValue",
            ),
            ("mattermost://h/Matt3rmostTok", "Matt3rmostTok"),
        ];
        for (url, secret) in cases {
            let t = parse(1, url).unwrap_or_else(|f| panic!("{url}: {f}"));
            assert!(!t.shown.contains(secret), "{url} shown as {}", t.shown);
            assert!(
                !redact::scrub(&format!("x {secret} y")).contains(secret),
                "{url}: {secret} not registered"
            );
        }
    }

    #[test]
    fn targets_are_shown_as_scheme_and_host_and_unknown_forms_refused() {
        let t = parse(
            1,
            "webhook+https://hooks.example.com:8443/in/abc?x=QueryValue77",
        )
        .unwrap();
        assert_eq!(t.shown, "webhook+https://hooks.example.com:8443");
        assert!(!redact::scrub("x QueryValue77 y").contains("QueryValue77"));
        let t = parse(2, "slack://T0AAAAAA/B0BBBBBB/XXXXXXXX").unwrap();
        assert_eq!(t.shown, format!("slack://{}", redact::MASK));
        for url in [
            "discord://tok:Extra@123456",
            "gchat://user@space/KEY123456/TOKEN123456",
            "workflows://user@h.logic.azure.com/wf/sig",
            "slack://bot:pw@T0AAAAAA/B0BBBBBB/XXXXXXXX",
        ] {
            let f = parse(4, url).unwrap_err();
            assert_eq!(f.code, initbox_runtime::Code::USAGE, "{url}");
            assert!(f.message.contains("user information"), "{url}: {f}");
        }
        // apprise's pagerduty://INTEGRATION_KEY@API_KEY: both keys are secrets.
        let t = parse(3, "pagerduty://IntegKey123456@ApiKey654321").unwrap();
        assert_eq!(t.shown, format!("pagerduty://{}", redact::MASK));
        assert!(!redact::scrub("x ApiKey654321 IntegKey123456").contains("Key"));
        assert_eq!(
            http_of(&t).headers,
            vec![("Authorization".into(), "Token token=ApiKey654321".into())]
        );
    }

    #[test]
    fn placeholders_expand_percent_encoded() {
        // SAFETY: single-threaded test set-up of a unique variable.
        unsafe { std::env::set_var("NOTIFY_TEST_PW", "p@ss/w:rd") };
        let t = parse(
            1,
            "smtp://u:${NOTIFY_TEST_PW}@mail.x.org?to=a@x.org&from=b@x.org",
        )
        .unwrap();
        match t.service {
            Service::Smtp(s) => assert_eq!(s.password.as_deref(), Some("p@ss/w:rd")),
            _ => panic!(),
        }
        let f = parse(2, "smtp://u:${NOTIFY_TEST_MISSING}@h?to=a").unwrap_err();
        assert!(f.message.contains("NOTIFY_TEST_MISSING"), "{f}");
    }
}
