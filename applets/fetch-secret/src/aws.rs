//! AWS Secrets Manager (`GetSecretValue`) and SSM Parameter Store (`GetParameter`, decrypted),
//! signed with SigV4 (the `aws-sigv4` crate: ring-free of aws-lc-rs, no SDK runtime).
//!
//! Credentials: the SDKs' chain, in their order (see [`crate::aws_creds`]).

use std::path::PathBuf;
use std::time::SystemTime;

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use clap::Args;
use initbox_runtime::{Deadline, Failure, redact};
use serde_json::{Value, json};

use crate::aws_creds::{Profiles, config_path};
use crate::http::{self, Tls, short_error};
use crate::reference::{Backend, Reference};
use crate::value::{Document, Fetched};
use crate::vault::read_secret_file;

/// AWS flags. The SDKs' variables (AWS_REGION, AWS_DEFAULT_REGION, AWS_PROFILE,
/// AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>, AWS_CA_BUNDLE) are honoured when the INITBOX_
/// one is not set.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "AWS")]
pub struct AwsArgs {
    /// Region (falls back to AWS_REGION, AWS_DEFAULT_REGION, the profile's region).
    #[arg(long, value_name = "REGION", env = "INITBOX_AWS_REGION")]
    pub aws_region: Option<String>,

    /// Endpoint URL for every AWS service used (falls back to AWS_ENDPOINT_URL), e.g. a local emulator.
    #[arg(long, value_name = "URL", env = "INITBOX_AWS_ENDPOINT")]
    pub aws_endpoint: Option<String>,

    /// Profile of the shared config/credentials files (falls back to AWS_PROFILE, then "default").
    #[arg(long, value_name = "NAME", env = "INITBOX_AWS_PROFILE")]
    pub aws_profile: Option<String>,

    /// CA bundle (PEM) trusted for AWS endpoints in addition to the system roots (falls back to AWS_CA_BUNDLE).
    #[arg(long, value_name = "PATH", env = "INITBOX_AWS_CA_FILE")]
    pub aws_ca_file: Option<PathBuf>,
}

pub(crate) fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[derive(Clone)]
pub(crate) struct Creds {
    access_key: String,
    secret_key: String,
    session_token: Option<String>,
    pub(crate) source: &'static str,
    /// When temporary credentials expire; they are fetched again this close to it.
    pub(crate) expires: Option<SystemTime>,
}

/// Temporary credentials closer than this to their expiry are fetched again (the container
/// endpoint's token file is read again then).
pub(crate) const REFRESH_BEFORE: std::time::Duration = std::time::Duration::from_secs(300);

/// The parameters of one STS `AssumeRole`.
pub(crate) struct AssumeRole<'a> {
    pub arn: &'a str,
    pub session: Option<&'a str>,
    pub external_id: Option<&'a str>,
}

impl Creds {
    pub(crate) fn new(
        access_key: String,
        secret_key: String,
        token: Option<String>,
        source: &'static str,
    ) -> Self {
        redact::register(&secret_key);
        if let Some(t) = &token {
            redact::register(t);
        }
        Creds {
            access_key,
            secret_key,
            session_token: token,
            source,
            expires: None,
        }
    }
}

/// A client for Secrets Manager and SSM; credentials resolved once, on first use.
pub struct Aws {
    args: AwsArgs,
    pub(crate) http: reqwest::Client,
    /// Instance metadata: one attempt, 1 s, so a pod off AWS is not slowed.
    pub(crate) imds_http: reqwest::Client,
    pub(crate) deadline: Deadline,
    creds: tokio::sync::Mutex<Option<Creds>>,
    /// Credentials of references with their own `profile=` / `role_arn=` (vals).
    scoped: tokio::sync::Mutex<std::collections::HashMap<String, Creds>>,
}

fn fresh(c: &Creds) -> bool {
    c.expires.is_none_or(|t| {
        t.duration_since(SystemTime::now())
            .is_ok_and(|left| left > REFRESH_BEFORE)
    })
}

impl Aws {
    pub fn new(
        args: &AwsArgs,
        timeout: std::time::Duration,
        deadline: Deadline,
    ) -> Result<Aws, Failure> {
        let tls = Tls {
            ca_file: args
                .aws_ca_file
                .clone()
                .or_else(|| env_nonempty("AWS_CA_BUNDLE").map(PathBuf::from)),
            ..Tls::default()
        };
        Ok(Aws {
            args: args.clone(),
            http: http::client(&tls, timeout)?,
            imds_http: http::client(&Tls::default(), crate::aws_creds::IMDS_TIMEOUT)?,
            deadline,
            creds: tokio::sync::Mutex::new(None),
            scoped: tokio::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    pub(crate) fn profile(&self) -> String {
        self.args
            .aws_profile
            .clone()
            .or_else(|| env_nonempty("AWS_PROFILE"))
            .unwrap_or_else(|| "default".into())
    }

    fn region(&self, r: Option<&Reference>) -> Result<String, Failure> {
        // An ARN names its region.
        if let Some(region) = r
            .filter(|r| r.path.starts_with("arn:"))
            .and_then(|r| r.path.split(':').nth(3))
            .filter(|s| !s.is_empty())
        {
            return Ok(region.to_string());
        }
        // vals' `region=` and `profile=` of this reference.
        if let Some(region) = r.and_then(|r| r.region.clone()) {
            return Ok(region);
        }
        let profile = r
            .and_then(|r| r.profile.clone())
            .unwrap_or_else(|| self.profile());
        self.args
            .aws_region
            .clone()
            .or_else(|| env_nonempty("AWS_REGION"))
            .or_else(|| env_nonempty("AWS_DEFAULT_REGION"))
            .or_else(|| {
                Profiles::load()
                    .ok()?
                    .get(&profile, "region")
                    .map(str::to_string)
            })
            .ok_or_else(|| {
                Failure::usage(format!(
                    "no AWS region: set --aws-region (INITBOX_AWS_REGION), AWS_REGION, \
                     AWS_DEFAULT_REGION, or region in profile '{}' of {}",
                    profile,
                    config_path()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "~/.aws/config".into())
                ))
            })
    }

    fn endpoint(&self, service: &str, env_suffix: &str, region: &str) -> String {
        self.args
            .aws_endpoint
            .clone()
            .or_else(|| env_nonempty(&format!("AWS_ENDPOINT_URL_{env_suffix}")))
            .or_else(|| env_nonempty("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| format!("https://{service}.{region}.amazonaws.com"))
            .trim_end_matches('/')
            .to_string()
    }

    /// The run's credentials: found once, found again when temporary ones near their expiry.
    async fn credentials(&self) -> Result<Creds, Failure> {
        let mut cached = self.creds.lock().await;
        if let Some(c) = cached.as_ref() {
            if fresh(c) {
                return Ok(c.clone());
            }
            tracing::info!(
                source = c.source,
                "aws: credentials expire soon; fetching them again"
            );
        }
        let c = self.find_credentials().await?;
        *cached = Some(c.clone());
        Ok(c)
    }

    /// The credentials of one reference: the run's, or those of its `profile=`, with its
    /// `role_arn=` assumed on top (vals' parameters).
    async fn credentials_for(&self, r: &Reference) -> Result<Creds, Failure> {
        if r.profile.is_none() && r.role_arn.is_none() {
            return self.credentials().await;
        }
        let key = format!(
            "{}|{}",
            r.profile.as_deref().unwrap_or_default(),
            r.role_arn.as_deref().unwrap_or_default()
        );
        let mut scoped = self.scoped.lock().await;
        if let Some(c) = scoped.get(&key).filter(|c| fresh(c)) {
            return Ok(c.clone());
        }
        let base = match &r.profile {
            Some(p) => self
                .profile_credentials(&Profiles::load()?, p)
                .await?
                .ok_or_else(|| {
                    Failure::usage(format!(
                        "{}: AWS profile '{p}' does not exist or has no credentials",
                        r.written()
                    ))
                })?,
            None => self.credentials().await?,
        };
        let c = match &r.role_arn {
            Some(arn) => {
                self.assume_role(
                    &base,
                    AssumeRole {
                        arn,
                        session: None,
                        external_id: None,
                    },
                )
                .await?
            }
            None => base,
        };
        scoped.insert(key, c.clone());
        Ok(c)
    }

    /// STS `AssumeRoleWithWebIdentity` (unsigned: the token is the credential).
    pub(crate) async fn assume_role_with_web_identity(
        &self,
        file: &std::path::Path,
        role_arn: &str,
        session: Option<String>,
    ) -> Result<Creds, Failure> {
        let token = read_secret_file(file, "web identity token")?;
        let session = session.unwrap_or_else(default_session);
        let form = format!(
            "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn={}&RoleSessionName={}&WebIdentityToken={}",
            enc(role_arn),
            enc(&session),
            enc(&token)
        );
        let c = self
            .sts(
                None,
                &form,
                &format!("AWS STS AssumeRoleWithWebIdentity for {role_arn}"),
                "web identity",
            )
            .await?;
        tracing::info!(role = role_arn, "aws: assumed role with web identity");
        Ok(c)
    }

    /// STS `AssumeRole`, signed with `base`.
    pub(crate) async fn assume_role(
        &self,
        base: &Creds,
        role: AssumeRole<'_>,
    ) -> Result<Creds, Failure> {
        let session = role
            .session
            .map(str::to_string)
            .unwrap_or_else(default_session);
        let mut form = format!(
            "Action=AssumeRole&Version=2011-06-15&RoleArn={}&RoleSessionName={}",
            enc(role.arn),
            enc(&session)
        );
        if let Some(x) = role.external_id {
            form.push_str(&format!("&ExternalId={}", enc(x)));
        }
        let c = self
            .sts(
                Some(base),
                &form,
                &format!("AWS STS AssumeRole for {}", role.arn),
                "assumed role",
            )
            .await?;
        tracing::info!(role = role.arn, from = base.source, "aws: assumed role");
        Ok(c)
    }

    /// One STS query-protocol call returning credentials.
    async fn sts(
        &self,
        signer: Option<&Creds>,
        form: &str,
        what: &str,
        source: &'static str,
    ) -> Result<Creds, Failure> {
        let region = self.region(None).unwrap_or_else(|_| "us-east-1".into());
        let url = format!("{}/", self.endpoint("sts", "STS", &region));
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let headers = [("content-type", content_type)];
        let sign = |c: &Creds| sign_headers(c, &region, "sts", &url, &headers, form.as_bytes());
        if let Some(c) = signer {
            sign(c)
                .map_err(|e| Failure::failed(format!("{what}: cannot sign the request: {e}")))?;
        }
        let resp = http::send(&self.deadline, what, || {
            let mut req = self.http.post(&url).body(form.to_string());
            match signer {
                Some(c) => {
                    for (k, v) in sign(c).unwrap_or_default() {
                        req = req.header(k, v);
                    }
                }
                None => req = req.header("content-type", content_type),
            }
            req
        })
        .await?;
        let body = String::from_utf8_lossy(&resp.body);
        if resp.status != 200 {
            let code = xml_tag(&body, "Code").unwrap_or_default();
            let msg = xml_tag(&body, "Message").unwrap_or_default();
            let text = format!("{what}: HTTP {} {code} {msg}", resp.status);
            return Err(if matches!(resp.status, 400 | 401 | 403) {
                Failure::credentials(text.trim_end().to_string())
            } else {
                Failure::failed(text.trim_end().to_string())
            });
        }
        match (
            xml_tag(&body, "AccessKeyId"),
            xml_tag(&body, "SecretAccessKey"),
            xml_tag(&body, "SessionToken"),
        ) {
            (Some(ak), Some(sk), token) => {
                let mut c = Creds::new(ak, sk, token, source);
                c.expires = xml_tag(&body, "Expiration")
                    .and_then(|e| humantime::parse_rfc3339_weak(&e).ok());
                Ok(c)
            }
            _ => Err(Failure::failed(format!(
                "{what}: the answer has no credentials"
            ))),
        }
    }

    /// One signed JSON-protocol call (`X-Amz-Target`).
    async fn call(
        &self,
        service: &str,
        env_suffix: &str,
        target: &str,
        body: Value,
        r: &Reference,
    ) -> Result<(u16, Value), Failure> {
        let creds = self.credentials_for(r).await?;
        let region = self.region(Some(r))?;
        let url = format!("{}/", self.endpoint(service, env_suffix, &region));
        let body = body.to_string();
        let what = format!("aws {target} {}", r.path);
        let headers = [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", target),
        ];
        let signed = |c: &Creds| sign_headers(c, &region, service, &url, &headers, body.as_bytes());
        // Fail early on a signing problem; each attempt signs again with a fresh date.
        signed(&creds)
            .map_err(|e| Failure::failed(format!("{what}: cannot sign the request: {e}")))?;
        let resp = http::send_with(
            &self.deadline,
            &what,
            || {
                let mut req = self.http.post(&url).body(body.clone());
                for (k, v) in signed(&creds).unwrap_or_default() {
                    req = req.header(k, v);
                }
                req
            },
            |status, body| status == 400 && error_type(body).contains("Throttling"),
        )
        .await?;
        let v: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
        if resp.status == 200 {
            return Ok((200, v));
        }
        let kind = error_type(&resp.body);
        let detail = short_error(&resp.body);
        if CREDENTIAL_ERRORS.iter().any(|c| kind.contains(c)) || matches!(resp.status, 401 | 403) {
            return Err(Failure::credentials(format!(
                "{what}: credentials ({}) rejected (HTTP {} {kind}{detail})",
                creds.source, resp.status
            )));
        }
        Ok((
            resp.status,
            json!({"__type": kind, "message": detail.trim_start_matches(": ")}),
        ))
    }

    pub async fn read(&self, r: &Reference) -> Result<Fetched, Failure> {
        match r.backend {
            Backend::AwsSecretsManager => {
                let mut body = json!({"SecretId": r.path});
                if let Some(v) = &r.version {
                    body["VersionId"] = json!(v);
                }
                if let Some(s) = &r.stage {
                    body["VersionStage"] = json!(s);
                }
                let (status, v) = self
                    .call(
                        "secretsmanager",
                        "SECRETS_MANAGER",
                        "secretsmanager.GetSecretValue",
                        body,
                        r,
                    )
                    .await?;
                if status != 200 {
                    return not_found_or_fail(status, &v, r, &["ResourceNotFoundException"]);
                }
                let value = v
                    .get("SecretString")
                    .or_else(|| v.get("SecretBinary"))
                    .cloned()
                    .unwrap_or(Value::Null);
                if !value.is_string() {
                    return Err(Failure::failed(format!(
                        "aws secretsmanager {}: the answer has no SecretString or SecretBinary",
                        r.path
                    )));
                }
                Ok(Fetched::Found(Document::new(value, None)))
            }
            Backend::AwsSsm if r.path.ends_with('/') => self.read_ssm_path(r).await,
            Backend::AwsSsm => {
                let name = match &r.version {
                    Some(v) => format!("{}:{v}", r.path),
                    None => r.path.clone(),
                };
                let (status, v) = self
                    .call(
                        "ssm",
                        "SSM",
                        "AmazonSSM.GetParameter",
                        json!({"Name": name, "WithDecryption": true}),
                        r,
                    )
                    .await?;
                if status != 200 {
                    return not_found_or_fail(
                        status,
                        &v,
                        r,
                        &["ParameterNotFound", "ParameterVersionNotFound"],
                    );
                }
                match v["Parameter"]["Value"].as_str() {
                    Some(s) => Ok(Fetched::Found(Document::new(Value::String(s.into()), None))),
                    None => Err(Failure::failed(format!(
                        "aws ssm {}: the answer has no Parameter.Value",
                        r.path
                    ))),
                }
            }
            _ => unreachable!("not an AWS reference"),
        }
    }

    /// Every parameter below a path (`GetParametersByPath`, recursive, decrypted, every page),
    /// as a map nested by the path's segments below it: `/prod/db/password` under `/prod/` is
    /// `{"db": {"password": ...}}`.
    async fn read_ssm_path(&self, r: &Reference) -> Result<Fetched, Failure> {
        if r.version.is_some() {
            return Err(Failure::invalid_input(format!(
                "{}: version= does not apply to a path (it ends with '/')",
                r.written()
            )));
        }
        let mut tree = serde_json::Map::new();
        let mut next: Option<String> = None;
        let mut count = 0usize;
        loop {
            let mut body = json!({
                "Path": r.path,
                "Recursive": true,
                "WithDecryption": true,
                "MaxResults": 10,
            });
            if let Some(t) = &next {
                body["NextToken"] = json!(t);
            }
            let (status, v) = self
                .call("ssm", "SSM", "AmazonSSM.GetParametersByPath", body, r)
                .await?;
            if status != 200 {
                return not_found_or_fail(status, &v, r, &[]);
            }
            for p in v["Parameters"].as_array().into_iter().flatten() {
                let (Some(name), Some(value)) = (p["Name"].as_str(), p["Value"].as_str()) else {
                    continue;
                };
                initbox_runtime::redact::register(value);
                let rel = name.strip_prefix(r.path.as_str()).unwrap_or(name);
                insert_path(&mut tree, rel, value)
                    .map_err(|why| Failure::failed(format!("aws ssm {}: {why}", r.path)))?;
                count += 1;
            }
            next = v["NextToken"]
                .as_str()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if next.is_none() {
                break;
            }
        }
        if count == 0 {
            return Ok(Fetched::NotFound(format!(
                "secret not found: aws ssm {} (no parameters below the path)",
                r.path
            )));
        }
        Ok(Fetched::Found(Document::new(Value::Object(tree), None)))
    }
}

/// Put `value` at the `/`-separated `rel` path of `tree`.
fn insert_path(
    tree: &mut serde_json::Map<String, Value>,
    rel: &str,
    value: &str,
) -> Result<(), String> {
    let parts: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
    let Some((last, dirs)) = parts.split_last() else {
        return Err(format!("parameter {rel} has no name below the path"));
    };
    let mut node = tree;
    for d in dirs {
        let entry = node
            .entry(d.to_string())
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        node = match entry {
            Value::Object(m) => m,
            _ => {
                return Err(format!(
                    "'{d}' is both a parameter and a path of parameters"
                ));
            }
        };
    }
    if node.contains_key(*last) {
        return Err(format!(
            "'{last}' is both a parameter and a path of parameters"
        ));
    }
    node.insert(last.to_string(), Value::String(value.to_string()));
    Ok(())
}

fn default_session() -> String {
    format!("initbox-{}", std::process::id())
}

/// The headers of a SigV4-signed POST: `headers` themselves plus the signature's.
fn sign_headers(
    creds: &Creds,
    region: &str,
    service: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Vec<(String, String)>, String> {
    let identity = aws_credential_types::Credentials::new(
        creds.access_key.clone(),
        creds.secret_key.clone(),
        creds.session_token.clone(),
        None,
        "initbox",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let req = SignableRequest::new(
        "POST",
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(req, &params).map_err(|e| e.to_string())?.into_parts();
    let mut out: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    out.extend(
        instructions
            .headers()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    Ok(out)
}

const CREDENTIAL_ERRORS: &[&str] = &[
    "UnrecognizedClient",
    "InvalidSignature",
    "ExpiredToken",
    "AccessDenied",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
];

fn not_found_or_fail(
    status: u16,
    v: &Value,
    r: &Reference,
    not_found: &[&str],
) -> Result<Fetched, Failure> {
    let kind = v["__type"].as_str().unwrap_or_default();
    let msg = v["message"].as_str().unwrap_or_default();
    let service = if r.backend == Backend::AwsSsm {
        "ssm"
    } else {
        "secretsmanager"
    };
    if not_found.contains(&kind) {
        return Ok(Fetched::NotFound(format!(
            "secret not found: aws {service} {} ({kind})",
            r.path
        )));
    }
    Err(Failure::failed(format!(
        "aws {service} {} failed (HTTP {status} {kind}{}{msg})",
        r.path,
        if msg.is_empty() { "" } else { ": " }
    )))
}

/// `__type` of an AWS JSON error, without its namespace prefix.
fn error_type(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("__type").and_then(|t| t.as_str()).map(str::to_string))
        .map(|t| t.rsplit('#').next().unwrap_or_default().to_string())
        .unwrap_or_default()
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The text of the first `<tag>` element (STS answers are small, fixed XML documents).
fn xml_tag(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)? + start;
    let text = xml[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    Some(text.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sts_xml_and_error_types() {
        let xml = "<AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>AK</AccessKeyId><SecretAccessKey>S&amp;K</SecretAccessKey></Credentials>";
        assert_eq!(xml_tag(xml, "AccessKeyId").as_deref(), Some("AK"));
        assert_eq!(xml_tag(xml, "SecretAccessKey").as_deref(), Some("S&K"));
        assert_eq!(xml_tag(xml, "SessionToken"), None);
        assert_eq!(
            error_type(br#"{"__type":"com.amazonaws.x#ResourceNotFoundException"}"#),
            "ResourceNotFoundException"
        );
    }
}
