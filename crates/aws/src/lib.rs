//! AWS for initbox: the SDKs' credential chain ([`creds`]), SigV4 signing (the `aws-sigv4`
//! crate: ring-free of aws-lc-rs, no SDK runtime), STS, and an S3 client ([`s3`]).
//!
//! One flag set ([`AwsArgs`]) for every applet that talks to AWS: fetch-secret (Secrets
//! Manager, SSM), restore and backup (S3).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use clap::Args;
use initbox_runtime::{Deadline, Failure, redact};
use serde_json::Value;

pub mod creds;
pub mod http;
pub mod s3;

pub use creds::{Profiles, config_path};

/// AWS flags. The SDKs' variables (AWS_REGION, AWS_DEFAULT_REGION, AWS_PROFILE,
/// AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>, AWS_CA_BUNDLE) are honoured when the INITBOX_
/// one is not set.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "AWS")]
pub struct AwsArgs {
    /// Region (falls back to AWS_REGION, AWS_DEFAULT_REGION, the profile's region).
    #[arg(long, value_name = "REGION", env = initbox_runtime::env::AWS_REGION)]
    pub aws_region: Option<String>,

    /// Endpoint URL for every AWS service used (falls back to AWS_ENDPOINT_URL), e.g. a local emulator.
    #[arg(long, value_name = "URL", env = initbox_runtime::env::AWS_ENDPOINT)]
    pub aws_endpoint: Option<String>,

    /// Profile of the shared config/credentials files (falls back to AWS_PROFILE, then "default").
    #[arg(long, value_name = "NAME", env = initbox_runtime::env::AWS_PROFILE)]
    pub aws_profile: Option<String>,

    /// CA bundle (PEM) trusted for AWS endpoints in addition to the system roots (falls back to AWS_CA_BUNDLE).
    #[arg(long, value_name = "PATH", env = initbox_runtime::env::AWS_CA_FILE)]
    pub aws_ca_file: Option<PathBuf>,
}

pub fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A secret file (token): read, refused when empty, registered for redaction.
pub fn read_secret_file(path: &Path, what: &str) -> Result<String, Failure> {
    let text = initbox_runtime::input::read_secret(
        path,
        &format!("{what} file {}", path.display()),
        false,
    )?;
    if text.is_empty() {
        return Err(Failure::invalid_input(format!(
            "the {what} file {} is empty",
            path.display()
        )));
    }
    redact::register(&text);
    Ok(text)
}

/// Register every string and number of a JSON answer for redaction.
pub fn register_all(v: &Value) {
    match v {
        Value::String(s) => redact::register(s),
        Value::Number(n) => redact::register(&n.to_string()),
        Value::Array(a) => a.iter().for_each(register_all),
        Value::Object(o) => o.values().for_each(register_all),
        Value::Bool(_) | Value::Null => {}
    }
}

#[derive(Clone)]
pub struct Creds {
    access_key: String,
    secret_key: String,
    session_token: Option<String>,
    pub source: &'static str,
    /// When temporary credentials expire; they are fetched again this close to it.
    pub expires: Option<SystemTime>,
}

/// Temporary credentials closer than this to their expiry are fetched again (the container
/// endpoint's token file is read again then).
pub const REFRESH_BEFORE: std::time::Duration = std::time::Duration::from_secs(300);

/// The parameters of one STS `AssumeRole`.
pub struct AssumeRole<'a> {
    pub arn: &'a str,
    pub session: Option<&'a str>,
    pub external_id: Option<&'a str>,
}

impl Creds {
    pub fn new(
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

    /// Still good for [`REFRESH_BEFORE`] at least.
    pub fn fresh(&self) -> bool {
        self.expires.is_none_or(|t| {
            t.duration_since(SystemTime::now())
                .is_ok_and(|left| left > REFRESH_BEFORE)
        })
    }
}

/// An AWS session: settings, HTTP clients, the deadline; credentials resolved once, on first
/// use, and again when temporary ones near their expiry.
pub struct Aws {
    args: AwsArgs,
    pub http: reqwest::Client,
    /// Instance metadata: one attempt, 1 s, so a pod off AWS is not slowed.
    pub imds_http: reqwest::Client,
    pub deadline: Deadline,
    creds: tokio::sync::Mutex<Option<Creds>>,
}

impl Aws {
    pub fn new(
        args: &AwsArgs,
        timeout: std::time::Duration,
        deadline: Deadline,
    ) -> Result<Aws, Failure> {
        let tls = http::Tls {
            ca_file: args
                .aws_ca_file
                .clone()
                .or_else(|| env_nonempty("AWS_CA_BUNDLE").map(PathBuf::from)),
        };
        Ok(Aws {
            args: args.clone(),
            http: http::client(&tls, timeout)?,
            imds_http: http::client(&http::Tls::default(), creds::IMDS_TIMEOUT)?,
            deadline,
            creds: tokio::sync::Mutex::new(None),
        })
    }

    pub fn args(&self) -> &AwsArgs {
        &self.args
    }

    pub fn profile(&self) -> String {
        self.args
            .aws_profile
            .clone()
            .or_else(|| env_nonempty("AWS_PROFILE"))
            .unwrap_or_else(|| "default".into())
    }

    /// The region: the flag, AWS_REGION, AWS_DEFAULT_REGION, the region of `profile` (the
    /// run's profile when `None`).
    pub fn region(&self, profile: Option<&str>) -> Result<String, Failure> {
        let profile = profile
            .map(str::to_string)
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

    /// The endpoint of `service`: the flag, AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, or
    /// AWS's own.
    pub fn endpoint(&self, service: &str, env_suffix: &str, region: &str) -> String {
        self.explicit_endpoint(env_suffix)
            .unwrap_or_else(|| format!("https://{service}.{region}.amazonaws.com"))
    }

    /// The endpoint set by flag or variable, if any.
    pub fn explicit_endpoint(&self, env_suffix: &str) -> Option<String> {
        self.args
            .aws_endpoint
            .clone()
            .or_else(|| env_nonempty(&format!("AWS_ENDPOINT_URL_{env_suffix}")))
            .or_else(|| env_nonempty("AWS_ENDPOINT_URL"))
            .map(|e| e.trim_end_matches('/').to_string())
    }

    /// The run's credentials: found once, found again when temporary ones near their expiry.
    pub async fn credentials(&self) -> Result<Creds, Failure> {
        let mut cached = self.creds.lock().await;
        if let Some(c) = cached.as_ref() {
            if c.fresh() {
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

    /// STS `AssumeRoleWithWebIdentity` (unsigned: the token is the credential).
    pub async fn assume_role_with_web_identity(
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
    pub async fn assume_role(&self, base: &Creds, role: AssumeRole<'_>) -> Result<Creds, Failure> {
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
}

fn default_session() -> String {
    format!("initbox-{}", std::process::id())
}

/// The headers of a SigV4-signed POST: `headers` themselves plus the signature's.
pub fn sign_headers(
    creds: &Creds,
    region: &str,
    service: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Vec<(String, String)>, String> {
    sign_request(
        creds,
        region,
        service,
        "POST",
        url,
        headers,
        SignableBody::Bytes(body),
        SigningSettings::default(),
    )
}

/// The headers of a SigV4-signed S3 request: single URI encoding, no path normalization, the
/// payload's SHA-256 (or `UNSIGNED-PAYLOAD`) in `x-amz-content-sha256`.
pub fn sign_s3(
    creds: &Creds,
    region: &str,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    payload_sha256: Option<&str>,
) -> Result<Vec<(String, String)>, String> {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let body = match payload_sha256 {
        Some(h) => SignableBody::Precomputed(h.to_string()),
        None => SignableBody::UnsignedPayload,
    };
    sign_request(creds, region, "s3", method, url, headers, body, settings)
}

#[allow(clippy::too_many_arguments)]
fn sign_request(
    creds: &Creds,
    region: &str,
    service: &str,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: SignableBody<'_>,
    settings: SigningSettings,
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
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let req = SignableRequest::new(method, url, headers.iter().copied(), body)
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

pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The text of the first `<tag>` element (STS and S3 answers are small XML documents).
pub fn xml_tag(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)? + start;
    Some(xml_unescape(xml[start..end].trim()))
}

/// Every `<tag>` element's text, in order.
pub fn xml_tags(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(s) = rest.find(&open) {
        let after = &rest[s + open.len()..];
        let Some(e) = after.find(&close) else { break };
        out.push(xml_unescape(after[..e].trim()));
        rest = &after[e + close.len()..];
    }
    out
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sts_xml() {
        let xml = "<AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>AK</AccessKeyId><SecretAccessKey>S&amp;K</SecretAccessKey></Credentials>";
        assert_eq!(xml_tag(xml, "AccessKeyId").as_deref(), Some("AK"));
        assert_eq!(xml_tag(xml, "SecretAccessKey").as_deref(), Some("S&K"));
        assert_eq!(xml_tag(xml, "SessionToken"), None);
        assert_eq!(
            xml_tags("<a><Key>x</Key><Key>y&amp;</Key></a>", "Key"),
            ["x", "y&"]
        );
    }
}
