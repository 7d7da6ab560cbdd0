//! The AWS credential chain, in the order the AWS SDKs try it:
//!
//! 1. the environment: `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`);
//! 2. web identity: `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (EKS IRSA), exchanged through
//!    STS `AssumeRoleWithWebIdentity`;
//! 3. the profile (`--aws-profile`, `AWS_PROFILE`, `default`) of the shared config file
//!    (`AWS_CONFIG_FILE`, `~/.aws/config`) and credentials file (`AWS_SHARED_CREDENTIALS_FILE`,
//!    `~/.aws/credentials`; its keys win): static keys, `role_arn` with `source_profile` (chains
//!    of STS `AssumeRole`), `credential_source` or `web_identity_token_file`, and
//!    `credential_process`;
//! 4. the container endpoint: `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` (ECS, against
//!    169.254.170.2) or `AWS_CONTAINER_CREDENTIALS_FULL_URI` (EKS Pod Identity and others), with
//!    `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` (re-read on every fetch) or
//!    `AWS_CONTAINER_AUTHORIZATION_TOKEN`;
//! 5. EC2 instance metadata (IMDSv2: a session token from `PUT /latest/api/token`, then the
//!    role's credentials), one attempt with a 1 s timeout so a pod off AWS is not slowed;
//!    `AWS_EC2_METADATA_SERVICE_ENDPOINT`, `AWS_EC2_METADATA_DISABLED`.
//!
//! Everything runs on the runtime's HTTP client (see the README's Decisions for why not
//! `aws-config`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use initbox_runtime::{Failure, child};
use serde_json::Value;

use crate::http;
use crate::read_secret_file;
use crate::{Aws, Creds, env_nonempty};

/// The ECS container host of `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`.
pub const ECS_HOST: &str = "169.254.170.2";
/// The default instance metadata endpoint.
pub const IMDS_ENDPOINT: &str = "http://169.254.169.254";
/// Timeout of each instance metadata request.
pub const IMDS_TIMEOUT: Duration = Duration::from_secs(1);

/// The profiles of the shared config and credentials files, merged (credentials file wins).
#[derive(Debug, Default)]
pub struct Profiles {
    map: HashMap<String, HashMap<String, String>>,
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

pub fn config_path() -> Option<PathBuf> {
    env_nonempty("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".aws/config")))
}

pub fn credentials_path() -> Option<PathBuf> {
    env_nonempty("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".aws/credentials")))
}

impl Profiles {
    /// Both files; a missing file is no profiles, an unreadable one an error.
    pub fn load() -> Result<Profiles, Failure> {
        let mut p = Profiles::default();
        if let Some(path) = config_path().filter(|p| p.exists()) {
            let text = initbox_runtime::input::read_string(&path, "AWS config file")?;
            p.merge(&text, true);
        }
        if let Some(path) = credentials_path().filter(|p| p.exists()) {
            let text = initbox_runtime::input::read_string(&path, "AWS credentials file")?;
            p.merge(&text, false);
        }
        Ok(p)
    }

    /// Add the sections of one file. In the config file a profile is `[profile NAME]` (or
    /// `[default]`); in the credentials file it is `[NAME]`. Indented lines (sub-settings such as
    /// `s3 =` blocks) are skipped.
    pub fn merge(&mut self, text: &str, config: bool) {
        let mut current: Option<String> = None;
        for raw in text.lines() {
            if raw.starts_with([' ', '\t']) && current.is_some() && !raw.trim().is_empty() {
                continue;
            }
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                let name = name.trim();
                current = if config {
                    match name.strip_prefix("profile ") {
                        Some(n) => Some(n.trim().to_string()),
                        None if name == "default" => Some(name.to_string()),
                        // sso-session, services, ...: not profiles.
                        None => None,
                    }
                } else {
                    Some(name.to_string())
                };
                if let Some(c) = &current {
                    self.map.entry(c.clone()).or_default();
                }
                continue;
            }
            if let (Some(section), Some((k, v))) = (&current, line.split_once('=')) {
                let entry = self.map.entry(section.clone()).or_default();
                let (k, v) = (k.trim().to_string(), v.trim().to_string());
                if config {
                    entry.entry(k).or_insert(v);
                } else {
                    entry.insert(k, v);
                }
            }
        }
    }

    pub fn get(&self, profile: &str, key: &str) -> Option<&str> {
        self.map
            .get(profile)?
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn has(&self, profile: &str) -> bool {
        self.map.contains_key(profile)
    }
}

/// A role to assume with the credentials below it in a profile chain.
struct Role {
    arn: String,
    session: Option<String>,
    external_id: Option<String>,
}

/// How the chain's sources went, for the final "no credentials" message.
fn no_credentials(profile: &str, imds: &str) -> Failure {
    Failure::usage(format!(
        "no AWS credentials: tried AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, \
         AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN, profile '{profile}' of the shared \
         config/credentials files, the container endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI \
         or _FULL_URI: not set) and EC2 instance metadata ({imds})"
    ))
}

/// `Expiration` of a credentials answer (RFC 3339).
fn expiration(v: Option<&str>) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(v?.trim()).ok()
}

/// Credentials from a JSON answer (container endpoint, IMDS, credential_process).
fn creds_from_json(
    v: &Value,
    token_key: &str,
    source: &'static str,
    what: &str,
) -> Result<Creds, Failure> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    match (s("AccessKeyId"), s("SecretAccessKey")) {
        (Some(ak), Some(sk)) if !ak.is_empty() && !sk.is_empty() => {
            let mut c = Creds::new(ak, sk, s(token_key), source);
            c.expires = expiration(v.get("Expiration").and_then(Value::as_str));
            Ok(c)
        }
        _ => {
            // Register whatever came back before it could show up anywhere.
            crate::register_all(v);
            Err(Failure::credentials(format!(
                "{what}: the answer has no AccessKeyId/SecretAccessKey"
            )))
        }
    }
}

/// The container endpoint the environment names, if any: `Ok(None)` when neither variable is
/// set; a FULL_URI over plain http to a host that is not loopback, the ECS or the EKS container
/// host is refused (the SDKs' rule: the endpoint receives an authorization token).
pub fn container_url(
    relative: Option<String>,
    full: Option<String>,
) -> Result<Option<reqwest::Url>, Failure> {
    if let Some(rel) = relative {
        let rel = if rel.starts_with('/') {
            rel
        } else {
            format!("/{rel}")
        };
        return reqwest::Url::parse(&format!("http://{ECS_HOST}{rel}"))
            .map(Some)
            .map_err(|e| {
                Failure::usage(format!(
                    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is not a URL path: {e}"
                ))
            });
    }
    let Some(full) = full else { return Ok(None) };
    let url = reqwest::Url::parse(&full).map_err(|e| {
        Failure::usage(format!(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI is not a URL: {e}"
        ))
    })?;
    let host = url.host_str().unwrap_or_default();
    let ip = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    let allowed = match url.scheme() {
        "https" => !host.is_empty(),
        "http" => match ip {
            Some(IpAddr::V4(v4)) => {
                v4.is_loopback()
                    || v4.octets() == [169, 254, 170, 2]
                    || v4.octets() == [169, 254, 170, 23]
            }
            Some(IpAddr::V6(v6)) => {
                v6.is_loopback()
                    || v6 == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23)
            }
            None => host.eq_ignore_ascii_case("localhost"),
        },
        _ => false,
    };
    if !allowed {
        return Err(Failure::usage(format!(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI {}: over http only a loopback address, the ECS \
             container host 169.254.170.2 or the EKS host 169.254.170.23/fd00:ec2::23 is \
             allowed (use https for any other host)",
            initbox_runtime::url::display_origin(url.as_str())
        )));
    }
    Ok(Some(url))
}

impl Aws {
    /// The first source of the chain that has credentials.
    pub async fn find_credentials(&self) -> Result<Creds, Failure> {
        // 1. The environment.
        match (
            env_nonempty("AWS_ACCESS_KEY_ID"),
            env_nonempty("AWS_SECRET_ACCESS_KEY"),
        ) {
            (Some(ak), Some(sk)) => {
                return Ok(Creds::new(
                    ak,
                    sk,
                    env_nonempty("AWS_SESSION_TOKEN"),
                    "environment",
                ));
            }
            (Some(_), None) => {
                return Err(Failure::usage(
                    "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is missing \
                     (set both, or neither to use another credential source)",
                ));
            }
            (None, Some(_)) => {
                return Err(Failure::usage(
                    "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is missing \
                     (set both, or neither to use another credential source)",
                ));
            }
            (None, None) => {}
        }
        // 2. Web identity from the environment.
        if let Some(file) = env_nonempty("AWS_WEB_IDENTITY_TOKEN_FILE") {
            let Some(role) = env_nonempty("AWS_ROLE_ARN") else {
                return Err(Failure::usage(
                    "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is missing",
                ));
            };
            return self
                .assume_role_with_web_identity(
                    Path::new(&file),
                    &role,
                    env_nonempty("AWS_ROLE_SESSION_NAME"),
                )
                .await;
        }
        // 3. The profile.
        let profiles = Profiles::load()?;
        let profile = self.profile();
        if let Some(c) = self.profile_credentials(&profiles, &profile).await? {
            return Ok(c);
        }
        // A profile asked for by name must exist (the SDKs' rule); `default` may be absent.
        if profile != "default" && !profiles.has(&profile) {
            return Err(Failure::usage(format!(
                "AWS profile '{profile}' (--aws-profile or AWS_PROFILE) is in neither the shared \
                 config file nor the credentials file"
            )));
        }
        // 4. The container endpoint.
        if let Some(c) = self.container_credentials().await? {
            return Ok(c);
        }
        // 5. Instance metadata.
        match self.imds_credentials().await? {
            Ok(c) => Ok(c),
            Err(why) => Err(no_credentials(&profile, &why)),
        }
    }

    /// The credentials of a profile, following `source_profile` chains; `Ok(None)` when the
    /// profile does not exist or holds no credential settings.
    pub async fn profile_credentials(
        &self,
        profiles: &Profiles,
        top: &str,
    ) -> Result<Option<Creds>, Failure> {
        let mut roles: Vec<Role> = Vec::new();
        let mut visited: Vec<String> = Vec::new();
        let mut name = top.to_string();
        let base = loop {
            if !profiles.has(&name) {
                if visited.is_empty() {
                    return Ok(None);
                }
                return Err(Failure::usage(format!(
                    "AWS profile '{name}' (source_profile of '{}') does not exist",
                    visited.last().map(String::as_str).unwrap_or_default()
                )));
            }
            if visited.contains(&name) {
                visited.push(name);
                return Err(Failure::usage(format!(
                    "AWS profiles form a source_profile loop: {}",
                    visited.join(" -> ")
                )));
            }
            let get = |k: &str| profiles.get(&name, k).map(str::to_string);
            let is_source = !visited.is_empty();
            visited.push(name.clone());
            let keys = match (get("aws_access_key_id"), get("aws_secret_access_key")) {
                (Some(ak), Some(sk)) => Some(Creds::new(
                    ak,
                    sk,
                    get("aws_session_token"),
                    "shared config profile",
                )),
                (None, None) => None,
                _ => {
                    return Err(Failure::usage(format!(
                        "AWS profile '{name}' has only one of aws_access_key_id and \
                         aws_secret_access_key"
                    )));
                }
            };
            // A source profile's own keys end the chain (the SDKs' rule).
            if is_source && let Some(k) = keys {
                break k;
            }
            if let Some(arn) = get("role_arn") {
                if let Some(file) = get("web_identity_token_file") {
                    break self
                        .assume_role_with_web_identity(
                            Path::new(&file),
                            &arn,
                            get("role_session_name"),
                        )
                        .await?;
                }
                roles.push(Role {
                    arn,
                    session: get("role_session_name"),
                    external_id: get("external_id"),
                });
                if let Some(src) = get("source_profile") {
                    if src == name {
                        match keys {
                            Some(k) => break k,
                            None => {
                                return Err(Failure::usage(format!(
                                    "AWS profile '{name}' is its own source_profile but has no keys"
                                )));
                            }
                        }
                    }
                    name = src;
                    continue;
                }
                match get("credential_source").as_deref() {
                    Some("Environment") => match (
                        env_nonempty("AWS_ACCESS_KEY_ID"),
                        env_nonempty("AWS_SECRET_ACCESS_KEY"),
                    ) {
                        (Some(ak), Some(sk)) => {
                            break Creds::new(
                                ak,
                                sk,
                                env_nonempty("AWS_SESSION_TOKEN"),
                                "environment",
                            );
                        }
                        _ => {
                            return Err(Failure::usage(format!(
                                "AWS profile '{name}': credential_source = Environment but \
                                 AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set"
                            )));
                        }
                    },
                    Some("EcsContainer") => match self.container_credentials().await? {
                        Some(c) => break c,
                        None => {
                            return Err(Failure::usage(format!(
                                "AWS profile '{name}': credential_source = EcsContainer but no \
                                 container endpoint is set"
                            )));
                        }
                    },
                    Some("Ec2InstanceMetadata") => match self.imds_credentials().await? {
                        Ok(c) => break c,
                        Err(why) => {
                            return Err(Failure::usage(format!(
                                "AWS profile '{name}': credential_source = Ec2InstanceMetadata: {why}"
                            )));
                        }
                    },
                    Some(other) => {
                        return Err(Failure::usage(format!(
                            "AWS profile '{name}': credential_source '{other}' is not one of \
                             Environment, EcsContainer, Ec2InstanceMetadata"
                        )));
                    }
                    None => {
                        return Err(Failure::usage(format!(
                            "AWS profile '{name}' has role_arn but no source_profile, \
                             credential_source or web_identity_token_file"
                        )));
                    }
                }
            }
            if let Some(k) = keys {
                break k;
            }
            if let Some(cmd) = get("credential_process") {
                break self.credential_process(&name, &cmd).await?;
            }
            if is_source {
                return Err(Failure::usage(format!(
                    "AWS profile '{name}' (a source_profile) has no credentials"
                )));
            }
            return Ok(None);
        };
        let mut creds = base;
        for role in roles.iter().rev() {
            creds = self.assume_role(&creds, role_args(role)).await?;
        }
        Ok(Some(creds))
    }

    /// `credential_process`: run through `sh -c` (as the SDKs do on Unix), its stdout a JSON
    /// document with `Version: 1`.
    async fn credential_process(&self, profile: &str, cmd: &str) -> Result<Creds, Failure> {
        let what = format!("credential_process of AWS profile '{profile}'");
        let command = child::Command::new(["sh", "-c", cmd])
            .stdout(child::Output::Tail)
            .stderr(child::Output::Tail)
            .tail(10_000, 64 * 1024)
            .grace(child::PROBE_GRACE);
        let limit = self
            .deadline
            .remaining()
            .unwrap_or(Duration::from_secs(3600));
        let done = match tokio::time::timeout(limit, command.run()).await {
            Ok(r) => r.map_err(|f| f.context(&what))?,
            Err(_) => {
                return Err(Failure::deadline(format!("{what}: deadline exceeded")));
            }
        };
        // Whatever it printed may hold the keys: registered before any message.
        initbox_runtime::redact::register(done.stdout.trim());
        if !done.success() {
            return Err(Failure::credentials(format!(
                "{what}: the command {}",
                child::describe(&done.status)
            )));
        }
        let v: Value = serde_json::from_str(done.stdout.trim()).map_err(|_| {
            Failure::credentials(format!("{what}: the output is not a JSON document"))
        })?;
        crate::register_all(&v);
        if v.get("Version").and_then(Value::as_u64) != Some(1) {
            return Err(Failure::credentials(format!(
                "{what}: the output's Version is not 1"
            )));
        }
        creds_from_json(&v, "SessionToken", "credential_process", &what)
    }

    /// The container credentials endpoint (ECS task role, EKS Pod Identity).
    pub async fn container_credentials(&self) -> Result<Option<Creds>, Failure> {
        let Some(url) = container_url(
            env_nonempty("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
            env_nonempty("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        )?
        else {
            return Ok(None);
        };
        // The token file is read on every fetch: the agent rotates it.
        let token = match env_nonempty("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
            Some(f) => Some(read_secret_file(
                Path::new(&f),
                "container authorization token",
            )?),
            None => env_nonempty("AWS_CONTAINER_AUTHORIZATION_TOKEN").inspect(|t| {
                initbox_runtime::redact::register(t);
            }),
        };
        if token.as_deref().is_some_and(|t| t.contains(['\r', '\n'])) {
            return Err(Failure::invalid_input(
                "the container authorization token holds a line break",
            ));
        }
        let shown = initbox_runtime::url::display_origin(url.as_str());
        let what = format!("AWS container credentials endpoint {shown}");
        let resp = http::send(&self.deadline, &what, || {
            let mut req = self
                .http
                .get(url.clone())
                .header("accept", "application/json");
            if let Some(t) = &token {
                req = req.header("authorization", t);
            }
            req
        })
        .await?;
        if resp.status != 200 {
            let text = format!(
                "{what}: HTTP {}{}",
                resp.status,
                http::short_error(&resp.body)
            );
            return Err(if (400..500).contains(&resp.status) {
                Failure::credentials(text)
            } else {
                Failure::failed(text)
            });
        }
        let v = resp.json().unwrap_or(Value::Null);
        let c = creds_from_json(&v, "Token", "container endpoint", &what)?;
        tracing::info!(endpoint = %shown, "aws: credentials from the container endpoint");
        Ok(Some(c))
    }

    /// IMDSv2. `Ok(Err(why))` when instance metadata has no credentials (off EC2, disabled, no
    /// role): the chain's end, reported in the "no credentials" message.
    pub async fn imds_credentials(&self) -> Result<Result<Creds, String>, Failure> {
        if env_nonempty("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return Ok(Err("disabled by AWS_EC2_METADATA_DISABLED".into()));
        }
        let base = env_nonempty("AWS_EC2_METADATA_SERVICE_ENDPOINT")
            .unwrap_or_else(|| IMDS_ENDPOINT.to_string());
        let base = base.trim_end_matches('/').to_string();
        let shown = reqwest::Url::parse(&base)
            .map(|u| initbox_runtime::url::display_origin(u.as_str()))
            .map_err(|e| {
                Failure::usage(format!(
                    "AWS_EC2_METADATA_SERVICE_ENDPOINT is not a URL: {e}"
                ))
            })?;
        let send = |req: reqwest::RequestBuilder| async move {
            let resp = req.send().await.map_err(|e| http::chain(&e))?;
            let status = resp.status().as_u16();
            let body = initbox_runtime::http::read_prefix(resp, 64 * 1024)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((status, body))
        };
        let token = match send(
            self.imds_http
                .put(format!("{base}/latest/api/token"))
                .header("x-aws-ec2-metadata-token-ttl-seconds", "21600"),
        )
        .await
        {
            Ok((200, body)) => String::from_utf8_lossy(&body).trim().to_string(),
            Ok((status, _)) => {
                return Ok(Err(format!(
                    "{shown} answered the IMDSv2 token request with HTTP {status}"
                )));
            }
            Err(e) => return Ok(Err(format!("{shown} not reachable: {e}"))),
        };
        initbox_runtime::redact::register(&token);
        let list = format!("{base}/latest/meta-data/iam/security-credentials/");
        let role = match send(
            self.imds_http
                .get(&list)
                .header("x-aws-ec2-metadata-token", &token),
        )
        .await
        {
            Ok((200, body)) => String::from_utf8_lossy(&body)
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_string(),
            Ok((404, _)) => return Ok(Err(format!("{shown}: no instance role attached"))),
            Ok((status, _)) => {
                return Ok(Err(format!("{shown}: role list answered HTTP {status}")));
            }
            Err(e) => return Ok(Err(format!("{shown}: {e}"))),
        };
        if role.is_empty() || role.contains(['/', '?', '#']) {
            return Ok(Err(format!("{shown}: no instance role attached")));
        }
        let what = format!("AWS instance metadata {shown} role {role}");
        let (status, body) = send(
            self.imds_http
                .get(format!("{list}{role}"))
                .header("x-aws-ec2-metadata-token", &token),
        )
        .await
        .map_err(|e| Failure::failed(format!("{what}: {e}")))?;
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if status != 200 || v.get("Code").and_then(Value::as_str) != Some("Success") {
            crate::register_all(&v);
            return Err(Failure::credentials(format!(
                "{what}: HTTP {status}, code {}",
                v.get("Code").and_then(Value::as_str).unwrap_or("none")
            )));
        }
        let c = creds_from_json(&v, "Token", "instance metadata", &what)?;
        tracing::info!(role = %role, "aws: credentials from instance metadata (IMDSv2)");
        Ok(Ok(c))
    }
}

fn role_args(r: &Role) -> crate::AssumeRole<'_> {
    crate::AssumeRole {
        arn: &r.arn,
        session: r.session.as_deref(),
        external_id: r.external_id.as_deref(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_merge_config_and_credentials() {
        let mut p = Profiles::default();
        p.merge(
            "[default]\nregion = eu-west-1\n[profile dev]\nrole_arn = arn:r\ns3 =\n  max_concurrent_requests = 2\nsource_profile = base\n[sso-session x]\nsso_region = y\n",
            true,
        );
        p.merge("[base]\naws_access_key_id = A\naws_secret_access_key = S\n[default]\nregion = us-east-2\n", false);
        assert_eq!(p.get("default", "region"), Some("us-east-2"));
        assert_eq!(p.get("dev", "source_profile"), Some("base"));
        assert_eq!(p.get("dev", "max_concurrent_requests"), None);
        assert_eq!(p.get("base", "aws_access_key_id"), Some("A"));
        assert!(!p.has("sso-session x") && !p.has("x"));
    }

    #[test]
    fn container_urls_follow_the_sdk_rule() {
        let u = container_url(Some("/v2/credentials/abc".into()), Some("http://x".into()))
            .unwrap()
            .unwrap();
        assert_eq!(u.as_str(), "http://169.254.170.2/v2/credentials/abc");
        for ok in [
            "http://127.0.0.1:8080/creds",
            "http://localhost/x",
            "http://169.254.170.23/v1/credentials",
            "http://[fd00:ec2::23]/v1/credentials",
            "http://[::1]:9/x",
            "https://creds.example.com/x",
        ] {
            assert!(
                container_url(None, Some(ok.into())).unwrap().is_some(),
                "{ok}"
            );
        }
        for bad in [
            "http://10.0.0.1/creds",
            "http://example.com/x",
            "ftp://127.0.0.1/x",
            "nope",
        ] {
            let f = container_url(None, Some(bad.into())).unwrap_err();
            assert_eq!(f.code, initbox_runtime::Code::USAGE, "{bad}");
        }
        assert!(container_url(None, None).unwrap().is_none());
    }

    #[test]
    fn expirations_parse() {
        assert!(expiration(Some("2026-12-01T09:00:00Z")).is_some());
        assert!(expiration(Some("2026-12-01T09:00:00.123Z")).is_some());
        assert!(expiration(Some("soon")).is_none());
    }
}
