//! AWS Secrets Manager (`GetSecretValue`) and SSM Parameter Store (`GetParameter`, decrypted),
//! signed with SigV4 (the `aws-sigv4` crate: ring-free of aws-lc-rs, no SDK runtime).
//!
//! Credentials, first found wins: the standard environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`); a web identity token file (EKS IRSA:
//! `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`, exchanged through STS
//! `AssumeRoleWithWebIdentity`); a profile of the shared credentials file.

use std::path::PathBuf;
use std::time::SystemTime;

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use clap::Args;
use initbox_runtime::{Deadline, Failure, redact};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

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

    /// Profile of the shared credentials file (falls back to AWS_PROFILE, then "default").
    #[arg(long, value_name = "NAME", env = "INITBOX_AWS_PROFILE")]
    pub aws_profile: Option<String>,

    /// CA bundle (PEM) trusted for AWS endpoints in addition to the system roots (falls back to AWS_CA_BUNDLE).
    #[arg(long, value_name = "PATH", env = "INITBOX_AWS_CA_FILE")]
    pub aws_ca_file: Option<PathBuf>,
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[derive(Clone)]
struct Creds {
    access_key: String,
    secret_key: String,
    session_token: Option<String>,
    source: &'static str,
}

impl Creds {
    fn new(
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
        }
    }
}

/// A client for Secrets Manager and SSM; credentials resolved once, on first use.
pub struct Aws {
    args: AwsArgs,
    http: reqwest::Client,
    deadline: Deadline,
    creds: OnceCell<Result<Creds, Failure>>,
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
            deadline,
            creds: OnceCell::new(),
        })
    }

    fn profile(&self) -> String {
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
        self.args
            .aws_region
            .clone()
            .or_else(|| env_nonempty("AWS_REGION"))
            .or_else(|| env_nonempty("AWS_DEFAULT_REGION"))
            .or_else(|| self.profile_value(false, "region"))
            .ok_or_else(|| {
                Failure::usage("no AWS region: set --aws-region, INITBOX_AWS_REGION or AWS_REGION")
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

    /// A value from the shared credentials file (`credentials`) or config file (`!credentials`).
    fn profile_value(&self, credentials: bool, key: &str) -> Option<String> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let path = if credentials {
            env_nonempty("AWS_SHARED_CREDENTIALS_FILE")
                .map(PathBuf::from)
                .or_else(|| home.map(|h| h.join(".aws/credentials")))
        } else {
            env_nonempty("AWS_CONFIG_FILE")
                .map(PathBuf::from)
                .or_else(|| home.map(|h| h.join(".aws/config")))
        }?;
        let text = initbox_runtime::input::read_string(&path, "AWS configuration").ok()?;
        let profile = self.profile();
        let wanted = if credentials || profile == "default" {
            vec![profile.clone()]
        } else {
            vec![format!("profile {profile}"), profile.clone()]
        };
        ini_value(&text, &wanted, key)
    }

    async fn credentials(&self) -> Result<Creds, Failure> {
        self.creds
            .get_or_init(|| async { self.find_credentials().await })
            .await
            .clone()
    }

    async fn find_credentials(&self) -> Result<Creds, Failure> {
        if let (Some(ak), Some(sk)) = (
            env_nonempty("AWS_ACCESS_KEY_ID"),
            env_nonempty("AWS_SECRET_ACCESS_KEY"),
        ) {
            return Ok(Creds::new(
                ak,
                sk,
                env_nonempty("AWS_SESSION_TOKEN"),
                "environment",
            ));
        }
        if let (Some(file), Some(role)) = (
            env_nonempty("AWS_WEB_IDENTITY_TOKEN_FILE"),
            env_nonempty("AWS_ROLE_ARN"),
        ) {
            return self
                .assume_role_with_web_identity(&PathBuf::from(file), &role)
                .await;
        }
        let ak = self.profile_value(true, "aws_access_key_id");
        let sk = self.profile_value(true, "aws_secret_access_key");
        if let (Some(ak), Some(sk)) = (ak, sk) {
            let token = self.profile_value(true, "aws_session_token");
            return Ok(Creds::new(ak, sk, token, "shared credentials file"));
        }
        Err(Failure::usage(format!(
            "no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, \
             AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN, or profile '{}' in the shared credentials file",
            self.profile()
        )))
    }

    async fn assume_role_with_web_identity(
        &self,
        file: &std::path::Path,
        role_arn: &str,
    ) -> Result<Creds, Failure> {
        let token = read_secret_file(file, "web identity token")?;
        let region = self.region(None).unwrap_or_else(|_| "us-east-1".into());
        let url = self.endpoint("sts", "STS", &region);
        let session = env_nonempty("AWS_ROLE_SESSION_NAME")
            .unwrap_or_else(|| format!("initbox-{}", std::process::id()));
        let form = format!(
            "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn={}&RoleSessionName={}&WebIdentityToken={}",
            enc(role_arn),
            enc(&session),
            enc(&token)
        );
        let what = format!("AWS STS AssumeRoleWithWebIdentity for {role_arn}");
        let resp = http::send(&self.deadline, &what, || {
            self.http
                .post(format!("{url}/"))
                .header(
                    "content-type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                )
                .body(form.clone())
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
                tracing::info!(role = role_arn, "aws: assumed role with web identity");
                Ok(Creds::new(ak, sk, token, "web identity"))
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
        let creds = self.credentials().await?;
        let region = self.region(Some(r))?;
        let url = format!("{}/", self.endpoint(service, env_suffix, &region));
        let body = body.to_string();
        let what = format!("aws {target} {}", r.path);
        let signed = |creds: &Creds| -> Result<Vec<(String, String)>, String> {
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
                .region(&region)
                .name(service)
                .time(SystemTime::now())
                .settings(SigningSettings::default())
                .build()
                .map_err(|e| e.to_string())?
                .into();
            let headers = [
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", target),
            ];
            let req = SignableRequest::new(
                "POST",
                &url,
                headers.into_iter(),
                SignableBody::Bytes(body.as_bytes()),
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
        };
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

/// `key = value` of the first of `sections` that has it, in an INI-style AWS file.
fn ini_value(text: &str, sections: &[String], key: &str) -> Option<String> {
    for wanted in sections {
        let mut in_section = false;
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                in_section = name.trim() == wanted;
                continue;
            }
            if in_section
                && let Some((k, v)) = line.split_once('=')
                && k.trim() == key
            {
                return Some(v.trim().to_string());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_profiles() {
        let text = "[default]\naws_access_key_id = A1\n\n[profile dev]\nregion = eu-west-1\n[dev]\naws_access_key_id=D1\n";
        assert_eq!(
            ini_value(text, &["default".into()], "aws_access_key_id").as_deref(),
            Some("A1")
        );
        assert_eq!(
            ini_value(text, &["dev".into()], "aws_access_key_id").as_deref(),
            Some("D1")
        );
        assert_eq!(
            ini_value(text, &["profile dev".into()], "region").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(ini_value(text, &["x".into()], "region"), None);
    }

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
