//! Secret references: one vals-style syntax for every backend.
//!
//! ```text
//! ref+BACKEND://PATH[?PARAM=VALUE&...][#FRAGMENT]
//! ```
//!
//! | backend | PATH | example |
//! |---|---|---|
//! | `vault` | a Vault path (KV v1/v2 auto-detected, or any path returning `data`) | `ref+vault://secret/app/db#/password` |
//! | `awssm` (alias `awssecrets`) | a Secrets Manager secret name or ARN | `ref+awssm://prod/db#/password` |
//! | `awsssm` | an SSM parameter name (`/a/b`; a leading `/` is added to hierarchical names) | `ref+awsssm:///prod/api_key` |
//! | `k8s` | `NAMESPACE/SECRET` or `SECRET` (namespace of the pod) | `ref+k8s://app/db-creds#password` |
//! | `file` | a file path | `ref+file:///run/secrets/token` |
//! | `env` | an environment variable name | `ref+env://DB_PASSWORD` |
//!
//! FRAGMENT is a JSON pointer into the secret (`#/password`, `#/nested/key`), or a plain key
//! (`#password`). Without a fragment (or with `#/`) the whole secret is the value: a string as
//! is, a map as compact JSON. Parameters: `optional=true`, `default=TEXT` (both make a missing
//! secret or key non-fatal), `version=N` (Vault KV v2, Secrets Manager `VersionId`, SSM),
//! `stage=AWSCURRENT` (Secrets Manager), `kv=1|2` (skip Vault's KV version detection),
//! `namespace=NS` (Vault Enterprise/OpenBao namespace), `decode=base64`, `raw=true` (file:
//! keep the content byte for byte; by default exactly one trailing newline is dropped, the
//! toolkit's secret-file rule). A trailing `+` (vals'
//! end-of-expression marker) is accepted and ignored.
//!
//! A malformed reference is an input error (exit 3) whose one-line message names the reference;
//! a parameter given twice (`?default=a&default=b`) is a usage error (exit 2) naming the
//! parameter. Messages never show a `default=` value.

use std::fmt;

use initbox_runtime::Failure;

/// Where a secret comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Backend {
    Vault,
    AwsSecretsManager,
    AwsSsm,
    Kubernetes,
    File,
    Env,
}

impl Backend {
    /// The scheme as written in references (`vault`, `awssm`, ...).
    pub fn scheme(self) -> &'static str {
        match self {
            Backend::Vault => "vault",
            Backend::AwsSecretsManager => "awssm",
            Backend::AwsSsm => "awsssm",
            Backend::Kubernetes => "k8s",
            Backend::File => "file",
            Backend::Env => "env",
        }
    }

    fn from_scheme(s: &str) -> Option<Backend> {
        Some(match s {
            "vault" => Backend::Vault,
            "awssm" | "awssecrets" => Backend::AwsSecretsManager,
            "awsssm" => Backend::AwsSsm,
            "k8s" => Backend::Kubernetes,
            "file" => Backend::File,
            "env" => Backend::Env,
            _ => return None,
        })
    }
}

/// Which part of a fetched secret is wanted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Selector {
    /// The whole secret.
    Whole,
    /// A JSON pointer (`/a/b`), RFC 6901.
    Pointer(String),
    /// One top-level key, taken literally.
    Key(String),
}

/// How the value is post-processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Decode {
    None,
    Base64,
}

/// A parsed secret reference.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    pub backend: Backend,
    /// Backend-specific location (Vault path without leading `/`, SSM name, file path, ...).
    pub path: String,
    pub selector: Selector,
    /// A missing secret or key yields no value instead of failing the run.
    pub optional: bool,
    /// Used when the secret or key is missing (implies `optional`). May itself be sensitive, so
    /// it is never shown.
    pub default: Option<String>,
    /// `version=`: KV v2 version, Secrets Manager VersionId, SSM version.
    pub version: Option<String>,
    /// `stage=`: Secrets Manager VersionStage.
    pub stage: Option<String>,
    /// `kv=1|2`: the Vault KV version, skipping detection.
    pub kv: Option<u8>,
    /// `namespace=`: the Vault namespace of this read.
    pub namespace: Option<String>,
    pub decode: Decode,
    /// `raw=true` (file references): keep the file's content byte for byte instead of
    /// dropping one trailing newline (the toolkit's secret-file rule).
    pub raw: bool,
    /// `region=` (AWS, vals): the region of this read.
    pub region: Option<String>,
    /// `profile=` (AWS, vals): the shared-config profile whose credentials read this secret.
    pub profile: Option<String>,
    /// `role_arn=` (AWS, vals): a role assumed (STS AssumeRole) with the run's credentials
    /// for this read.
    pub role_arn: Option<String>,
    /// The query as written (every `default=` value masked), for messages.
    pub query: String,
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl Reference {
    /// The reference as written, parameters included (`default=` values masked), for messages
    /// where the parameters matter (`decode=`, `version=`).
    pub fn written(&self) -> String {
        let mut out = format!("ref+{}://{}", self.backend.scheme(), self.path);
        if !self.query.is_empty() {
            out.push('?');
            out.push_str(&self.query);
        }
        match &self.selector {
            Selector::Whole => {}
            Selector::Pointer(p) => out.push_str(&format!("#{p}")),
            Selector::Key(k) => out.push_str(&format!("#{k}")),
        }
        out
    }

    /// Whether this AWS read needs credentials or a region other than the run's.
    pub fn aws_scope(&self) -> Option<String> {
        if self.profile.is_none() && self.role_arn.is_none() && self.region.is_none() {
            return None;
        }
        Some(format!(
            "{}|{}|{}",
            self.profile.as_deref().unwrap_or_default(),
            self.role_arn.as_deref().unwrap_or_default(),
            self.region.as_deref().unwrap_or_default()
        ))
    }
}

/// Shown in messages: scheme, path and fragment, never the `default=` value.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ref+{}://{}", self.backend.scheme(), self.path)?;
        match &self.selector {
            Selector::Whole => Ok(()),
            Selector::Pointer(p) => write!(f, "#{p}"),
            Selector::Key(k) => write!(f, "#{k}"),
        }
    }
}

/// The known parameters, for error messages.
pub const PARAMS: &[&str] = &[
    "optional",
    "default",
    "version",
    "stage",
    "kv",
    "namespace",
    "decode",
    "raw",
    "region",
    "profile",
    "role_arn",
    "version_stage",
    "version_id",
    "mode",
];

/// Whether `s` looks like a reference (starts with `ref+`).
pub fn is_reference(s: &str) -> bool {
    s.trim_start().starts_with("ref+")
}

/// Parse a reference; a malformed one is an input error (exit 3) naming it. A parameter given
/// twice is a usage error (exit 2) naming the parameter: each has one meaning, and vals-style
/// tools disagree on which of two values wins, so initbox picks neither.
pub fn parse(input: &str) -> Result<Reference, Failure> {
    if let Some(key) = repeated_param(input.trim()) {
        return Err(Failure::usage(format!(
            "secret reference '{}': parameter '{key}' is given more than once (give it once)",
            shown(input)
        )));
    }
    parse_inner(input.trim()).map_err(|why| {
        Failure::invalid_input(format!(
            "invalid secret reference '{}': {why}",
            shown(input)
        ))
    })
}

/// The first known parameter that the query of `input` gives more than once.
fn repeated_param(input: &str) -> Option<&str> {
    let before_fragment = input.split_once('#').map_or(input, |(b, _)| b);
    let (_, query) = before_fragment.split_once('?')?;
    let keys: Vec<&str> = query
        .split('&')
        .map(|pair| pair.split_once('=').map_or(pair, |(k, _)| k))
        .filter(|k| PARAMS.contains(k))
        .collect();
    keys.iter()
        .enumerate()
        .find(|(i, k)| keys[..*i].contains(k))
        .map(|(_, k)| *k)
}

/// The reference as it may appear in a message: every `default=` value masked (a value runs to
/// the next `&` or `#`, as the parser reads it).
fn shown(input: &str) -> String {
    let mut rest = input.trim();
    let mut out = String::with_capacity(rest.len());
    while let Some(i) = rest.find("default=") {
        let value = i + "default=".len();
        out.push_str(&rest[..value]);
        out.push('…');
        rest = &rest[value..];
        rest = &rest[rest.find(['&', '#']).unwrap_or(rest.len())..];
    }
    out.push_str(rest);
    out
}

impl std::str::FromStr for Reference {
    type Err = Failure;
    fn from_str(s: &str) -> Result<Self, Failure> {
        parse(s)
    }
}

fn parse_inner(input: &str) -> Result<Reference, String> {
    let rest = input
        .strip_prefix("ref+")
        .ok_or("must start with 'ref+' (e.g. ref+vault://secret/app#/password)")?;
    let rest = rest.strip_suffix('+').unwrap_or(rest);
    let (scheme, rest) = rest
        .split_once("://")
        .ok_or("missing '://' after the backend name")?;
    let backend = Backend::from_scheme(scheme).ok_or_else(|| {
        format!("unknown backend '{scheme}' (known: vault, awssm, awsssm, k8s, file, env)")
    })?;
    let (before_fragment, fragment) = match rest.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (rest, None),
    };
    let (path, query) = match before_fragment.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (before_fragment, None),
    };
    let selector = match fragment {
        None | Some("") | Some("/") => Selector::Whole,
        Some(p) if p.starts_with('/') => Selector::Pointer(p.to_string()),
        Some(k) => Selector::Key(k.to_string()),
    };
    let mut r = Reference {
        backend,
        path: String::new(),
        selector,
        optional: false,
        default: None,
        version: None,
        stage: None,
        kv: None,
        namespace: None,
        decode: Decode::None,
        raw: false,
        region: None,
        profile: None,
        role_arn: None,
        query: query.map(shown).unwrap_or_default(),
    };
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_encoding::percent_decode_str(v)
            .decode_utf8()
            .map_err(|_| format!("parameter '{k}' is not valid UTF-8 after %-decoding"))?
            .into_owned();
        match k {
            "optional" => {
                r.optional = match v.as_str() {
                    "" | "true" | "1" | "yes" => true,
                    "false" | "0" | "no" => false,
                    _ => return Err(format!("optional={v} is not true or false")),
                }
            }
            "default" => r.default = Some(v),
            "raw" => {
                r.raw = match v.as_str() {
                    "" | "true" | "1" | "yes" => true,
                    "false" | "0" | "no" => false,
                    _ => return Err(format!("raw={v} is not true or false")),
                }
            }
            "version" | "version_id" if !v.is_empty() => {
                if r.version.is_some() {
                    return Err("give version= or version_id=, not both".into());
                }
                r.version = Some(v)
            }
            "stage" | "version_stage" if !v.is_empty() => {
                if r.stage.is_some() {
                    return Err("give stage= or version_stage=, not both".into());
                }
                r.stage = Some(v)
            }
            "region" if !v.is_empty() => r.region = Some(v),
            "profile" if !v.is_empty() => r.profile = Some(v),
            "role_arn" if !v.is_empty() => r.role_arn = Some(v),
            // vals' awsssm modes: initbox always reads the one parameter named and looks into
            // its JSON/YAML value, which is vals' `singleparam`.
            "mode" => {
                if v != "singleparam" {
                    return Err(format!(
                        "mode={v} is not supported (initbox reads one parameter and looks into \
                         its value: vals' mode=singleparam; for every parameter below a path \
                         end the path with '/')"
                    ));
                }
            }
            "namespace" if !v.is_empty() => r.namespace = Some(v),
            "kv" => {
                r.kv = Some(match v.as_str() {
                    "1" => 1,
                    "2" => 2,
                    _ => return Err(format!("kv={v} must be 1 or 2")),
                })
            }
            "decode" => {
                r.decode = match v.as_str() {
                    "base64" => Decode::Base64,
                    _ => return Err(format!("decode={v} is not supported (known: base64)")),
                }
            }
            "version" | "stage" | "namespace" | "version_id" | "version_stage" | "region"
            | "profile" | "role_arn" => return Err(format!("parameter '{k}' is empty")),
            _ => {
                return Err(format!(
                    "unknown parameter '{k}' (known: {})",
                    PARAMS.join(", ")
                ));
            }
        }
    }
    if r.default.is_some() {
        r.optional = true;
    }
    r.path = normalize_path(backend, path)?;
    if (r.kv.is_some() || r.namespace.is_some()) && backend != Backend::Vault {
        return Err("kv= and namespace= apply to vault references only".into());
    }
    let aws = matches!(backend, Backend::AwsSecretsManager | Backend::AwsSsm);
    if (r.region.is_some() || r.profile.is_some() || r.role_arn.is_some()) && !aws {
        return Err(
            "region=, profile= and role_arn= apply to awssm and awsssm references only".into(),
        );
    }
    if query.is_some_and(|q| q.split('&').any(|p| p == "mode" || p.starts_with("mode=")))
        && backend != Backend::AwsSsm
    {
        return Err("mode= applies to awsssm references only".into());
    }
    if r.stage.is_some() && backend != Backend::AwsSecretsManager {
        return Err("stage= applies to awssm references only".into());
    }
    if r.version.is_some()
        && !matches!(
            backend,
            Backend::Vault | Backend::AwsSecretsManager | Backend::AwsSsm
        )
    {
        return Err(format!(
            "version= does not apply to {} references",
            backend.scheme()
        ));
    }
    if r.version.is_some() && r.stage.is_some() {
        return Err("give version= or stage=, not both".into());
    }
    Ok(r)
}

fn normalize_path(backend: Backend, path: &str) -> Result<String, String> {
    if path.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("the path contains whitespace or control characters".into());
    }
    let p = match backend {
        Backend::Vault => {
            let p = path.trim_matches('/');
            if p.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
                return Err("the Vault path has an empty, '.' or '..' segment".into());
            }
            p.to_string()
        }
        Backend::AwsSecretsManager => path.to_string(),
        Backend::AwsSsm => {
            if path.contains('/') && !path.starts_with('/') && !path.starts_with("arn:") {
                format!("/{path}")
            } else {
                path.to_string()
            }
        }
        Backend::Kubernetes => {
            let parts: Vec<&str> = path.split('/').collect();
            if parts.len() > 2 {
                return Err("expected ref+k8s://NAMESPACE/SECRET or ref+k8s://SECRET".into());
            }
            for part in &parts {
                if !is_dns_name(part) {
                    return Err(format!(
                        "'{}' is not a valid Kubernetes name (lowercase letters, digits, '-', '.')",
                        shown(part)
                    ));
                }
            }
            path.to_string()
        }
        Backend::File => path.to_string(),
        Backend::Env => {
            let ok = path
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && path.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(format!(
                    "'{}' is not an environment variable name",
                    shown(path)
                ));
            }
            path.to_string()
        }
    };
    if p.is_empty() {
        return Err("the path is empty".into());
    }
    Ok(p)
}

fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && !s.starts_with(['-', '.'])
        && !s.ends_with(['-', '.'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_backend() {
        let r = parse("ref+vault://secret/app/db?version=3#/password").unwrap();
        assert_eq!(r.backend, Backend::Vault);
        assert_eq!(r.path, "secret/app/db");
        assert_eq!(r.selector, Selector::Pointer("/password".into()));
        assert_eq!(r.version.as_deref(), Some("3"));
        let r = parse("ref+awssm://prod/db#/key").unwrap();
        assert_eq!(
            (r.backend, r.path.as_str()),
            (Backend::AwsSecretsManager, "prod/db")
        );
        let r = parse("ref+awssecrets://arn:aws:secretsmanager:eu-west-1:1:secret:x").unwrap();
        assert_eq!(r.backend, Backend::AwsSecretsManager);
        assert_eq!(
            parse("ref+awsssm:///prod/api_key").unwrap().path,
            "/prod/api_key"
        );
        assert_eq!(
            parse("ref+awsssm://prod/api_key").unwrap().path,
            "/prod/api_key"
        );
        assert_eq!(parse("ref+awsssm://flat").unwrap().path, "flat");
        let r = parse("ref+k8s://app/db-creds#password").unwrap();
        assert_eq!(r.path, "app/db-creds");
        assert_eq!(r.selector, Selector::Key("password".into()));
        assert_eq!(parse("ref+file:///run/s/x").unwrap().path, "/run/s/x");
        assert_eq!(parse("ref+env://DB_PASSWORD+").unwrap().path, "DB_PASSWORD");
        assert_eq!(
            parse("ref+vault://secret/x#/").unwrap().selector,
            Selector::Whole
        );
    }

    #[test]
    fn parameters() {
        let r = parse("ref+vault://kv/a?kv=1&namespace=team%2Fa&optional=true").unwrap();
        assert_eq!(r.kv, Some(1));
        assert_eq!(r.namespace.as_deref(), Some("team/a"));
        assert!(r.optional);
        let r = parse("ref+env://X?default=fall%26back").unwrap();
        assert_eq!(r.default.as_deref(), Some("fall&back"));
        assert!(r.optional);
        assert_eq!(
            parse("ref+file:///x?decode=base64").unwrap().decode,
            Decode::Base64
        );
    }

    #[test]
    fn malformed_references_are_input_errors_without_defaults() {
        for bad in [
            "vault://secret/x",
            "ref+vault:secret/x",
            "ref+nope://x",
            "ref+vault://",
            "ref+vault://a//b",
            "ref+vault://a/../b",
            "ref+vault://a?bogus=1",
            "ref+vault://a?kv=3",
            "ref+env://1X",
            "ref+k8s://A/b",
            "ref+k8s://a/b/c",
            "ref+file:///x?kv=2",
            "ref+env://X?version=2",
            "ref+vault://a?optional=maybe",
        ] {
            let f = parse(bad).unwrap_err();
            assert_eq!(f.code, initbox_runtime::exit::Code::INVALID_INPUT, "{bad}");
            assert!(f.message.contains("invalid secret reference"), "{bad}");
        }
        let f = parse("ref+vault://a?default=hunter2&bogus=1").unwrap_err();
        assert!(!f.message.contains("hunter2"), "{}", f.message);
    }

    #[test]
    fn a_repeated_parameter_is_a_usage_error_that_shows_no_default() {
        for (input, key) in [
            ("ref+env://NOPE?default=a&default=SECRET", "default"),
            ("ref+env://NOPE?default=SECRET&default=a", "default"),
            ("ref+vault://a?kv=1&default=SECRET&kv=2#/k", "kv"),
            (
                "ref+env://NOPE?optional=true&default=SECRET&optional",
                "optional",
            ),
        ] {
            let f = parse(input).unwrap_err();
            assert_eq!(f.code, initbox_runtime::exit::Code::USAGE, "{input}");
            assert!(
                f.message
                    .contains(&format!("parameter '{key}' is given more than once")),
                "{input}: {}",
                f.message
            );
            assert!(!f.message.contains("SECRET"), "{input}: {}", f.message);
            assert!(!f.message.contains("default=a"), "{input}: {}", f.message);
        }
        // An unknown parameter stays an input error at its first use.
        let f = parse("ref+env://X?bogus=1&bogus=2").unwrap_err();
        assert_eq!(f.code, initbox_runtime::exit::Code::INVALID_INPUT);
    }

    #[test]
    fn messages_mask_every_default_value() {
        assert_eq!(
            shown(" ref+env://X?default=a&kv=3&default=SECRET#/k "),
            "ref+env://X?default=…&kv=3&default=…#/k"
        );
        assert_eq!(shown("ref+env://X?default=SECRET"), "ref+env://X?default=…");
        // A `default=` written without the `?` is masked in the path's own message too.
        let f = parse("ref+env://X&default=SECRET").unwrap_err();
        assert!(!f.message.contains("SECRET"), "{}", f.message);
        let f = parse("ref+k8s://ns/x&default=SECRET").unwrap_err();
        assert!(!f.message.contains("SECRET"), "{}", f.message);
    }

    #[test]
    fn display_hides_the_default() {
        let r = parse("ref+vault://secret/a?default=s3cret#/k").unwrap();
        assert_eq!(r.to_string(), "ref+vault://secret/a#/k");
        assert!(!format!("{r:?}").contains("s3cret"));
    }
}
