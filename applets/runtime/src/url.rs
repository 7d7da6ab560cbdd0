//! URLs as initbox shows them, and what a service URL's user information may hold.
//!
//! Every URL initbox prints (log lines, errors, reports, `--dry-run`) goes through
//! [`DisplaySafeUrl`] (or [`display`] / [`display_origin`] for text that may not even parse):
//!
//! - credential-bearing schemes (databases, Redis, AMQP, NATS, MQTT) show `scheme://host[:port]`
//!   only: no user, no password, no path, no query;
//! - other URLs (`http(s)://`, `file://`...) mask the password (`user:[REDACTED]@`), mask a user
//!   name given alone (it is often a token), mask the values of secret-looking query keys, and
//!   drop the fragment;
//! - [`DisplaySafeUrl::origin_only`] shows `scheme://host[:port]` for any scheme (notify targets,
//!   whose path and query are the credential);
//! - the password is registered with [`crate::redact`] as the URL is read, so a library that
//!   prints the URL (or the password) itself is scrubbed too.
//!
//! A service URL whose user information is ambiguous (an `@` after the host part, which is what
//! an unencoded `@`, `/`, `?` or `#` in a password produces) is a usage error that shows only
//! the scheme: [`parse_service_url`].

use std::fmt;

use ::url::Url;

use crate::{Failure, redact};

/// Schemes whose URLs carry a password in their user information and whose path and query are
/// not worth the risk of showing.
pub const CREDENTIAL_SCHEMES: &[&str] = &[
    "postgres",
    "postgresql",
    "mysql",
    "mariadb",
    "redis",
    "rediss",
    "amqp",
    "amqps",
    "nats",
    "mqtt",
    "mqtts",
];

/// Query keys whose values are masked when a full URL is shown.
const SECRET_QUERY_KEYS: &[&str] = &[
    "password",
    "pass",
    "passwd",
    "pwd",
    "token",
    "access_token",
    "auth",
    "key",
    "apikey",
    "api_key",
    "secret",
    "sig",
    "signature",
    "code",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
];

/// Whether `scheme` (any case) is one of [`CREDENTIAL_SCHEMES`].
pub fn is_credential_scheme(scheme: &str) -> bool {
    CREDENTIAL_SCHEMES
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
}

/// A parsed URL whose `Display` never shows a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplaySafeUrl {
    url: Url,
    origin_only: bool,
}

impl DisplaySafeUrl {
    /// Wrap `url`, registering its password (and a lone user name) as secrets.
    pub fn new(url: Url) -> Self {
        register_userinfo(&url);
        let origin_only = is_credential_scheme(url.scheme());
        DisplaySafeUrl { url, origin_only }
    }

    /// Wrap `url` to be shown as `scheme://host[:port]` whatever its scheme.
    pub fn origin_only(url: Url) -> Self {
        register_userinfo(&url);
        DisplaySafeUrl {
            url,
            origin_only: true,
        }
    }

    /// The URL itself (with its credentials: never print it).
    pub fn as_url(&self) -> &Url {
        &self.url
    }

    /// The URL itself (with its credentials: never print it).
    pub fn into_url(self) -> Url {
        self.url
    }

    fn write_origin(&self, out: &mut String) {
        out.push_str(self.url.scheme());
        out.push_str("://");
        if let Some(h) = self.url.host_str() {
            out.push_str(h);
        }
        if let Some(p) = self.url.port() {
            out.push_str(&format!(":{p}"));
        }
    }

    fn render(&self) -> String {
        let mut out = String::new();
        if self.origin_only || !self.url.has_authority() {
            if self.url.has_authority() {
                self.write_origin(&mut out);
            } else {
                // `mailto:`, `data:`...: no host to show, and the rest may be anything.
                out.push_str(self.url.scheme());
                out.push(':');
            }
            return out;
        }
        let u = &self.url;
        out.push_str(u.scheme());
        out.push_str("://");
        match (u.username(), u.password()) {
            ("", None) => {}
            (user, Some(_)) if !user.is_empty() => {
                out.push_str(user);
                out.push(':');
                out.push_str(redact::MASK);
                out.push('@');
            }
            _ => {
                out.push_str(redact::MASK);
                out.push('@');
            }
        }
        if let Some(h) = u.host_str() {
            out.push_str(h);
        }
        if let Some(p) = u.port() {
            out.push_str(&format!(":{p}"));
        }
        out.push_str(u.path());
        if let Some(q) = u.query() {
            out.push('?');
            let shown: Vec<String> = q
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, v)) if is_secret_key(k) && !v.is_empty() => {
                        format!("{k}={}", redact::MASK)
                    }
                    _ => pair.to_string(),
                })
                .collect();
            out.push_str(&shown.join("&"));
        }
        out
    }
}

impl fmt::Display for DisplaySafeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact::scrub(&self.render()))
    }
}

fn is_secret_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    SECRET_QUERY_KEYS.contains(&k.as_str()) || k.ends_with("password") || k.ends_with("token")
}

/// Register a URL's password (as written and decoded), secret query values, and a user name
/// given without a password (a token).
fn register_userinfo(url: &Url) {
    let both = |s: &str| {
        redact::register(s);
        if let Ok(d) = percent_encoding::percent_decode_str(s).decode_utf8() {
            redact::register(&d);
        }
    };
    match (url.username(), url.password()) {
        (_, Some(p)) => both(p),
        ("", None) => {}
        (user, None) if !is_credential_scheme(url.scheme()) => both(user),
        _ => {}
    }
    for (k, v) in url.query_pairs() {
        if is_secret_key(&k) {
            redact::register(&v);
        }
    }
}

/// The parts of `raw` around its authority: `(scheme, authority, rest)`, split as RFC 3986 does
/// (the authority ends at the first `/`, `?` or `#`). `None` when there is no `scheme://`.
fn split(raw: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = raw.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some((scheme, &rest[..end], &rest[end..]))
}

/// What makes the user information of `raw` ambiguous, if anything: an `@` after the host part
/// (a password holding an unencoded `/`, `?` or `#`, with the host after it), more than one `@`
/// in the authority (an unencoded `@`), or a `%` that is not an escape.
pub fn userinfo_problem(raw: &str) -> Option<&'static str> {
    let (_, authority, rest) = split(raw)?;
    if rest.contains('@') {
        return Some("an '@' follows the host part, so the user information is ambiguous");
    }
    let (userinfo, _) = authority.rsplit_once('@')?;
    if userinfo.contains('@') {
        return Some("the user information holds an unencoded '@'");
    }
    let b = userinfo.as_bytes();
    for (i, c) in b.iter().enumerate() {
        if *c == b'%'
            && !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        {
            return Some("the user information holds a '%' that is not a %XX escape");
        }
    }
    None
}

/// Parse a URL of a credential-bearing service (database, Redis, AMQP, NATS, MQTT). Ambiguous
/// user information is a usage error naming the problem and the fix, showing nothing of the
/// user information or path; `separately` names the ways to pass the password instead (e.g.
/// "PGPASSWORD, INITBOX_PASSWORD or --password-file"). The password is registered as a secret.
pub fn parse_service_url(raw: &str, separately: &str) -> Result<DisplaySafeUrl, Failure> {
    let scheme = split(raw).map(|(s, _, _)| s.to_ascii_lowercase());
    let label = match &scheme {
        Some(s) => format!("{s}://"),
        None => "the".into(),
    };
    if let Some(problem) = userinfo_problem(raw) {
        return Err(Failure::usage(format!(
            "{label} URL: {problem}; percent-encode reserved characters in the user name and \
             password (@ as %40, : as %3A, / as %2F, ? as %3F, # as %23, % as %25), or pass \
             the password separately ({separately})"
        )));
    }
    let url = Url::parse(raw)
        .map_err(|e| Failure::usage(format!("'{}': not a valid URL: {e}", display(raw))))?;
    Ok(DisplaySafeUrl::new(url))
}

/// `raw` as it may be shown, whether or not it parses (see the module documentation).
pub fn display(raw: &str) -> String {
    show(raw, false)
}

/// `raw` as `scheme://host[:port]`, whatever its scheme, whether or not it parses.
pub fn display_origin(raw: &str) -> String {
    show(raw, true)
}

fn show(raw: &str, origin_only: bool) -> String {
    let raw = raw.trim();
    let Some((scheme, authority, rest)) = split(raw) else {
        // Not `scheme://...`: show it only when nothing in it can be a user information.
        return match raw.rsplit_once('@') {
            Some((_, host)) => redact::scrub(&format!("{}@{host}", redact::MASK)).into_owned(),
            None if origin_only => "[not a URL]".into(),
            None => redact::scrub(raw).into_owned(),
        };
    };
    if userinfo_problem(raw).is_some() {
        return format!("{}://{}", scheme.to_ascii_lowercase(), redact::MASK);
    }
    if let Ok(url) = Url::parse(raw) {
        let safe = if origin_only {
            DisplaySafeUrl::origin_only(url)
        } else {
            DisplaySafeUrl::new(url)
        };
        return safe.to_string();
    }
    // Malformed: the host part only, and the rest when it cannot hold a credential.
    let host = match authority.rsplit_once('@') {
        Some((_, h)) => format!("{}@{h}", redact::MASK),
        None => authority.to_string(),
    };
    let tail = if origin_only || is_credential_scheme(scheme) || rest.is_empty() {
        ""
    } else {
        rest.split('#').next().unwrap_or_default()
    };
    redact::scrub(&format!("{}://{host}{tail}", scheme.to_ascii_lowercase())).into_owned()
}

/// A password for a service URL from the environment: `initbox_var` first, then the service's
/// own convention (`PGPASSWORD` for postgres, `MYSQL_PWD` for mysql/mariadb, `REDISCLI_AUTH`
/// for redis). Returns the value (registered as a secret) and the variable's name; an empty
/// variable counts as unset.
pub fn password_from_env(
    scheme: &str,
    initbox_var: &'static str,
) -> Option<(String, &'static str)> {
    let service = service_password_var(scheme);
    for var in std::iter::once(initbox_var).chain(service) {
        if let Ok(v) = std::env::var(var)
            && !v.is_empty()
        {
            redact::register(&v);
            return Some((v, var));
        }
    }
    None
}

/// The password variable the service's own client reads, if it has one.
pub fn service_password_var(scheme: &str) -> Option<&'static str> {
    match scheme.to_ascii_lowercase().as_str() {
        "postgres" | "postgresql" => Some("PGPASSWORD"),
        "mysql" | "mariadb" => Some("MYSQL_PWD"),
        "redis" | "rediss" => Some("REDISCLI_AUTH"),
        _ => None,
    }
}

/// Register every secret the environment may hold for a database password, so it is scrubbed
/// even when a library (sqlx reads `PGPASSWORD` itself) is the one that uses it.
pub fn register_env_passwords(initbox_var: &str) {
    for var in [initbox_var, "PGPASSWORD", "MYSQL_PWD", "REDISCLI_AUTH"] {
        if let Ok(v) = std::env::var(var)
            && !v.is_empty()
        {
            redact::register(&v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::MASK;

    #[test]
    fn credential_schemes_show_scheme_host_port_only() {
        let shown = display("postgres://app:s3cr%40t-pw-url@db:5432/app?sslmode=require");
        assert_eq!(shown, "postgres://db:5432");
        assert!(!redact::scrub("auth for s3cr@t-pw-url failed").contains("s3cr@t-pw-url"));
        assert!(!redact::scrub("url s3cr%40t-pw-url").contains("s3cr%40t-pw-url"));
        assert_eq!(display("redis://db:6379/0"), "redis://db:6379");
        assert_eq!(display("MySQL://root@[::1]/test"), "mysql://[::1]");
    }

    #[test]
    fn other_urls_mask_userinfo_and_secret_query_values() {
        assert_eq!(
            display("https://u:pw-https-canary@api:8443/health?token=tok-canary-9&a=1#frag"),
            format!("https://u:{MASK}@api:8443/health?token={MASK}&a=1")
        );
        assert_eq!(
            display("https://ghp_lonetokencanary@example.com/x"),
            format!("https://{MASK}@example.com/x")
        );
        assert!(!redact::scrub("tok-canary-9").contains("canary"));
        assert_eq!(
            display_origin("https://hooks.slack.com/services/T0/B0/XYZ?x=1"),
            "https://hooks.slack.com"
        );
    }

    #[test]
    fn ambiguous_userinfo_is_refused_without_echo() {
        for raw in [
            "postgres://app:p@ss/w:rd@db:5432/app",
            "postgres://app:secret#1@db/app",
            "mysql://root:a?b@db/test",
            "redis://:x@y@cache:6379",
            "amqp://guest:100%free@mq/",
        ] {
            let e = parse_service_url(raw, "INITBOX_PASSWORD").unwrap_err();
            assert_eq!(e.code, crate::Code::USAGE, "{raw}");
            for frag in [
                "p@ss", "w:rd", "secret", "#1", "a?b", "x@y", "100", "free", "app", "root",
            ] {
                assert!(!e.message.contains(frag), "{raw}: {}", e.message);
            }
            assert!(e.message.contains("percent-encode"), "{}", e.message);
            let shown = display(raw);
            assert!(shown.ends_with(MASK), "{raw} shown as {shown}");
        }
        let ok = parse_service_url("postgres://app:p%40ss%2Fw%3Ard@db:5432/app", "x").unwrap();
        assert_eq!(ok.as_url().password(), Some("p%40ss%2Fw%3Ard"));
        assert_eq!(ok.to_string(), "postgres://db:5432");
    }

    #[test]
    fn malformed_input_shows_no_userinfo() {
        assert_eq!(
            display("redis://u:pw-bad-port@h:99999"),
            format!("redis://{MASK}@h:99999")
        );
        assert_eq!(display("localhost:5432"), "localhost:5432");
        assert_eq!(display("app:pw@db"), format!("{MASK}@db"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        /// Whatever a password holds, unencoded, neither the display nor the refusal shows it.
        #[test]
        fn no_password_fragment_is_ever_shown(tail in "[A-Za-z0-9@/:#?%&=+ .\\[\\]-]{0,16}") {
            let pw = format!("Zq7{tail}");
            for scheme in ["postgres", "mysql", "redis", "amqp", "nats", "mqtt", "https"] {
                let raw = format!("{scheme}://app:{pw}@db.internal:5432/appdb?sslmode=require");
                let shown = display(&raw);
                proptest::prop_assert!(!shown.contains("Zq7"), "{raw} shown as {shown}");
                if is_credential_scheme(scheme) {
                    proptest::prop_assert!(!shown.contains("appdb"), "{raw} shown as {shown}");
                    if let Err(e) = parse_service_url(&raw, "X") {
                        proptest::prop_assert!(!e.message.contains("Zq7"), "{}", e.message);
                        proptest::prop_assert!(!e.message.contains("appdb"), "{}", e.message);
                    }
                }
            }
        }
    }
}
