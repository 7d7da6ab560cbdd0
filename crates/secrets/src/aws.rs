//! AWS Secrets Manager (`GetSecretValue`) and SSM Parameter Store (`GetParameter`, decrypted),
//! signed with SigV4 (the `aws-sigv4` crate: ring-free of aws-lc-rs, no SDK runtime).
//!
//! Credentials and signing: the shared AWS session of `initbox-aws` (the SDKs' chain).

use std::collections::HashMap;

use initbox_aws::{AssumeRole, Creds, sign_headers};
use initbox_runtime::{Deadline, Failure};
use serde_json::{Value, json};

pub use initbox_aws::AwsArgs;

use crate::http::{self, short_error};
use crate::reference::{Backend, Reference};
use crate::value::{Document, Fetched};

/// A client for Secrets Manager and SSM on the shared AWS session (credentials resolved once,
/// on first use), plus the credentials of references with their own `profile=` / `role_arn=`
/// (vals).
pub struct Aws {
    core: initbox_aws::Aws,
    scoped: tokio::sync::Mutex<HashMap<String, Creds>>,
}

impl Aws {
    pub fn new(
        args: &AwsArgs,
        timeout: std::time::Duration,
        deadline: Deadline,
    ) -> Result<Aws, Failure> {
        Ok(Aws {
            core: initbox_aws::Aws::new(args, timeout, deadline)?,
            scoped: tokio::sync::Mutex::new(HashMap::new()),
        })
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
        self.core.region(r.and_then(|r| r.profile.as_deref()))
    }

    /// The credentials of one reference: the run's, or those of its `profile=`, with its
    /// `role_arn=` assumed on top (vals' parameters).
    async fn credentials_for(&self, r: &Reference) -> Result<Creds, Failure> {
        if r.profile.is_none() && r.role_arn.is_none() {
            return self.core.credentials().await;
        }
        let key = format!(
            "{}|{}",
            r.profile.as_deref().unwrap_or_default(),
            r.role_arn.as_deref().unwrap_or_default()
        );
        let mut scoped = self.scoped.lock().await;
        if let Some(c) = scoped.get(&key).filter(|c| c.fresh()) {
            return Ok(c.clone());
        }
        let base = match &r.profile {
            Some(p) => self
                .core
                .profile_credentials(&initbox_aws::Profiles::load()?, p)
                .await?
                .ok_or_else(|| {
                    Failure::usage(format!(
                        "{}: AWS profile '{p}' does not exist or has no credentials",
                        r.written()
                    ))
                })?,
            None => self.core.credentials().await?,
        };
        let c = match &r.role_arn {
            Some(arn) => {
                self.core
                    .assume_role(
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
        let url = format!("{}/", self.core.endpoint(service, env_suffix, &region));
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
            &self.core.deadline,
            &what,
            || {
                let mut req = self.core.http.post(&url).body(body.clone());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types() {
        assert_eq!(
            error_type(br#"{"__type":"com.amazonaws.x#ResourceNotFoundException"}"#),
            "ResourceNotFoundException"
        );
    }
}
