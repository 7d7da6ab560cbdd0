//! An S3 client on the shared AWS session: streaming GET, PUT, ListObjectsV2, DELETE and
//! multipart upload; path-style or virtual-host addressing; `--s3-endpoint` for MinIO-likes
//! and emulators; SSE-KMS and SSE-C headers.
//!
//! Errors follow the toolkit's exit codes: a refused signature or key (403, InvalidAccessKeyId,
//! SignatureDoesNotMatch, AccessDenied) is 5; a bucket that does not exist is 3.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use clap::{Args, ValueEnum};
use initbox_runtime::retry::{Attempt, retry};
use initbox_runtime::{Failure, redact};
use md5::Digest as _;

use crate::http::{self, Response, chain, short_error, transient_transport};
use crate::{Aws, sign_s3, xml_tag};

/// S3 flags: the endpoint and addressing of S3-compatible servers, and server-side encryption.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "S3")]
pub struct S3Args {
    /// S3 endpoint URL, e.g. a MinIO server (falls back to AWS_ENDPOINT_URL_S3, --aws-endpoint, AWS_ENDPOINT_URL).
    #[arg(long, value_name = "URL", env = initbox_runtime::env::S3_ENDPOINT)]
    pub s3_endpoint: Option<String>,

    /// Addressing: path (host/bucket/key), virtual (bucket.host/key), or auto: path with a custom endpoint, virtual on AWS.
    #[arg(
        long,
        value_name = "STYLE",
        env = initbox_runtime::env::S3_URL_STYLE,
        default_value = "auto"
    )]
    pub s3_url_style: UrlStyle,

    /// Server-side encryption of uploads: AES256 or aws:kms.
    #[arg(long, value_name = "ALGORITHM", env = initbox_runtime::env::S3_SSE)]
    pub s3_sse: Option<String>,

    /// KMS key id for --s3-sse aws:kms.
    #[arg(long, value_name = "KEY_ID", env = initbox_runtime::env::S3_SSE_KMS_KEY_ID)]
    pub s3_sse_kms_key_id: Option<String>,

    /// File holding the SSE-C key (32 bytes, raw or base64); sent with every upload and download.
    #[arg(long, value_name = "PATH", env = initbox_runtime::env::S3_SSE_C_KEY_FILE)]
    pub s3_sse_c_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum UrlStyle {
    #[default]
    Auto,
    Path,
    Virtual,
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub key: String,
    pub size: u64,
    pub last_modified: String,
}

/// An S3 client: one bucket-independent session.
pub struct S3 {
    aws: Arc<Aws>,
    region: String,
    endpoint: String,
    path_style: bool,
    /// Headers of uploads (SSE) and of every request on objects (SSE-C).
    upload_headers: Vec<(&'static str, String)>,
    sse_c: Vec<(&'static str, String)>,
}

/// AWS's URI encoding of a key: every byte but the unreserved ones and `/`.
const KEY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');
/// The same for query values (`/` encoded too).
const QUERY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// SHA-256 of the empty payload.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

impl S3 {
    pub fn new(aws: Arc<Aws>, args: &S3Args) -> Result<S3, Failure> {
        let region = aws.region(None).or_else(|e| {
            // A custom endpoint (MinIO, an emulator) does not care; AWS does.
            if args.s3_endpoint.is_some() || aws.explicit_endpoint("S3").is_some() {
                Ok("us-east-1".to_string())
            } else {
                Err(e)
            }
        })?;
        let custom = args
            .s3_endpoint
            .clone()
            .map(|e| e.trim_end_matches('/').to_string())
            .or_else(|| aws.explicit_endpoint("S3"));
        let path_style = match args.s3_url_style {
            UrlStyle::Path => true,
            UrlStyle::Virtual => false,
            UrlStyle::Auto => custom.is_some(),
        };
        let endpoint = custom.unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        if !endpoint.starts_with("http://") && !endpoint.starts_with("https://") {
            return Err(Failure::usage(format!(
                "--s3-endpoint {}: not an http:// or https:// URL",
                redact::url_for_display(&endpoint)
            )));
        }
        let mut upload_headers = Vec::new();
        match args.s3_sse.as_deref() {
            None => {}
            Some("AES256") => {
                upload_headers.push(("x-amz-server-side-encryption", "AES256".into()))
            }
            Some("aws:kms") => {
                upload_headers.push(("x-amz-server-side-encryption", "aws:kms".into()));
                if let Some(k) = &args.s3_sse_kms_key_id {
                    upload_headers.push(("x-amz-server-side-encryption-aws-kms-key-id", k.clone()));
                }
            }
            Some(other) => {
                return Err(Failure::usage(format!(
                    "--s3-sse {other}: not AES256 or aws:kms"
                )));
            }
        }
        if args.s3_sse_kms_key_id.is_some() && args.s3_sse.as_deref() != Some("aws:kms") {
            return Err(Failure::usage("--s3-sse-kms-key-id needs --s3-sse aws:kms"));
        }
        let mut sse_c = Vec::new();
        if let Some(path) = &args.s3_sse_c_key_file {
            // The key travels in a header of every object request: S3 and the S3-compatible
            // servers refuse SSE-C over plain HTTP, and so does initbox, before sending anything.
            if endpoint.starts_with("http://") {
                return Err(Failure::usage(format!(
                    "--s3-sse-c-key-file: the endpoint {} is plain http://, which would send the key unencrypted (SSE-C needs https://)",
                    redact::url_for_display(&endpoint)
                )));
            }
            let text = crate::read_secret_file(path, "SSE-C key")?;
            let key = if text.len() == 32 {
                text.into_bytes()
            } else {
                base64::engine::general_purpose::STANDARD
                    .decode(text.trim())
                    .ok()
                    .filter(|k| k.len() == 32)
                    .ok_or_else(|| {
                        Failure::invalid_input(format!(
                            "SSE-C key file {}: not 32 bytes, raw or base64",
                            path.display()
                        ))
                    })?
            };
            let b64 = base64::engine::general_purpose::STANDARD.encode(&key);
            let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&key));
            redact::register(&b64);
            sse_c.push((
                "x-amz-server-side-encryption-customer-algorithm",
                "AES256".into(),
            ));
            sse_c.push(("x-amz-server-side-encryption-customer-key", b64));
            sse_c.push(("x-amz-server-side-encryption-customer-key-md5", md5));
        }
        Ok(S3 {
            aws,
            region,
            endpoint,
            path_style,
            upload_headers,
            sse_c,
        })
    }

    /// The URL of `key` in `bucket` (`key` empty: the bucket), with an encoded query.
    fn url(&self, bucket: &str, key: &str, query: &[(&str, &str)]) -> String {
        let key = percent_encoding::utf8_percent_encode(key, KEY).to_string();
        let mut url = if self.path_style && key.is_empty() {
            // The bucket itself: `/bucket`, as the SDKs send it (the signed path must match).
            format!("{}/{bucket}", self.endpoint)
        } else if self.path_style {
            format!("{}/{bucket}/{key}", self.endpoint)
        } else {
            let (scheme, host) = self.endpoint.split_once("://").unwrap_or(("https", ""));
            format!("{scheme}://{bucket}.{host}/{key}")
        };
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            url.push('=');
            url.push_str(&percent_encoding::utf8_percent_encode(v, QUERY).to_string());
        }
        url
    }

    /// A signed request without a body.
    async fn request(
        &self,
        method: reqwest::Method,
        url: &str,
        headers: &[(&str, String)],
    ) -> Result<reqwest::RequestBuilder, Failure> {
        let creds = self.aws.credentials().await?;
        let hs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let signed = sign_s3(
            &creds,
            &self.region,
            method.as_str(),
            url,
            &hs,
            Some(EMPTY_SHA256),
        )
        .map_err(|e| Failure::failed(format!("S3: cannot sign the request: {e}")))?;
        let mut req = self.aws.http.request(method, url);
        for (k, v) in signed {
            req = req.header(k, v);
        }
        // A whole archive: bounded by the run's deadline and the reader's stall timeout, not
        // by the per-request timeout.
        Ok(req.timeout(self.aws.deadline.remaining().unwrap_or(LONG)))
    }

    /// Send a small request (its answer read whole), retried on transient failures.
    async fn send(
        &self,
        what: &str,
        method: reqwest::Method,
        url: &str,
        headers: &[(&str, String)],
        payload: Option<bytes::Bytes>,
    ) -> Result<Response, Failure> {
        // Sign once per attempt (a fresh date) by building the request anew each time.
        let creds = self.aws.credentials().await?;
        let hash = payload.as_deref().map(sha256_hex);
        let hs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let sign = || {
            sign_s3(
                &creds,
                &self.region,
                method.as_str(),
                url,
                &hs,
                Some(hash.as_deref().unwrap_or(EMPTY_SHA256)),
            )
        };
        sign().map_err(|e| Failure::failed(format!("{what}: cannot sign the request: {e}")))?;
        http::send(&self.aws.deadline, what, || {
            let mut req = self.aws.http.request(method.clone(), url);
            for (k, v) in sign().unwrap_or_default() {
                req = req.header(k, v);
            }
            if let Some(p) = &payload {
                req = req.body(p.clone()).timeout(REQUEST_TIMEOUT);
            }
            req
        })
        .await
    }

    /// GET an object as a stream: the response once its status is 2xx (transient failures
    /// before that are retried). `Ok(None)`: no such key.
    pub async fn get(&self, bucket: &str, key: &str) -> Result<Option<reqwest::Response>, Failure> {
        self.get_from(bucket, key, 0).await
    }

    /// GET an object as a stream from byte `offset` on (`Range: bytes=OFFSET-`, to resume a
    /// download): a 206 answer when the server honoured the range, a 200 with the whole object
    /// when it did not. `Ok(None)`: no such key.
    pub async fn get_from(
        &self,
        bucket: &str,
        key: &str,
        offset: u64,
    ) -> Result<Option<reqwest::Response>, Failure> {
        let what = format!("S3 GET s3://{bucket}/{key}");
        let url = self.url(bucket, key, &[]);
        let policy = http::policy(&self.aws.deadline);
        let what_ref = &what;
        let url_ref = &url;
        let mut headers = self.sse_c.clone();
        if offset > 0 {
            headers.push(("range", format!("bytes={offset}-")));
        }
        let headers = &headers;
        retry(&policy, &self.aws.deadline, &what, |_| async move {
            let req = self
                .request(reqwest::Method::GET, url_ref, headers)
                .await
                .map_err(Attempt::Fatal)?;
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) if transient_transport(&e) => return Err(Attempt::transient(chain(&e))),
                Err(e) => {
                    return Err(Attempt::Fatal(Failure::failed(format!(
                        "{what_ref}: {}",
                        chain(&e)
                    ))));
                }
            };
            let status = resp.status().as_u16();
            if (200..300).contains(&status) {
                return Ok(Some(resp));
            }
            let body = initbox_runtime::http::read_prefix(resp, 64 * 1024)
                .await
                .unwrap_or_default();
            if status == 429 || (500..600).contains(&status) && status != 501 {
                return Err(Attempt::transient(format!(
                    "HTTP {status}{}",
                    short_error(&body)
                )));
            }
            if status == 404 && error_code(&body) == "NoSuchKey" {
                return Ok(None);
            }
            Err(Attempt::Fatal(refusal(what_ref, bucket, status, &body)))
        })
        .await
    }

    /// GET a small object whole (manifests, checksums, locks). `Ok(None)`: no such key.
    pub async fn get_small(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, Failure> {
        let what = format!("S3 GET s3://{bucket}/{key}");
        let url = self.url(bucket, key, &[]);
        let resp = self
            .send(&what, reqwest::Method::GET, &url, &self.sse_c, None)
            .await?;
        match resp.status {
            200..=299 => Ok(Some(resp.body)),
            404 if error_code(&resp.body) == "NoSuchKey" => Ok(None),
            s => Err(refusal(&what, bucket, s, &resp.body)),
        }
    }

    /// PUT a whole object.
    pub async fn put(&self, bucket: &str, key: &str, body: bytes::Bytes) -> Result<(), Failure> {
        let what = format!("S3 PUT s3://{bucket}/{key}");
        let url = self.url(bucket, key, &[]);
        let headers = self.object_headers(true);
        let resp = self
            .send(&what, reqwest::Method::PUT, &url, &headers, Some(body))
            .await?;
        match resp.status {
            200..=299 => Ok(()),
            s => Err(refusal(&what, bucket, s, &resp.body)),
        }
    }

    /// PUT an object only if none exists under its key (`If-None-Match: *`); `Ok(false)`: one
    /// exists. Servers that ignore the header make this a plain PUT.
    pub async fn put_if_absent(
        &self,
        bucket: &str,
        key: &str,
        body: bytes::Bytes,
    ) -> Result<bool, Failure> {
        let what = format!("S3 PUT s3://{bucket}/{key}");
        let url = self.url(bucket, key, &[]);
        let mut headers = self.object_headers(true);
        headers.push(("if-none-match", "*".into()));
        let resp = self
            .send(&what, reqwest::Method::PUT, &url, &headers, Some(body))
            .await?;
        match resp.status {
            200..=299 => Ok(true),
            412 | 409 => Ok(false),
            s => Err(refusal(&what, bucket, s, &resp.body)),
        }
    }

    fn object_headers(&self, upload: bool) -> Vec<(&'static str, String)> {
        let mut h = self.sse_c.clone();
        if upload {
            h.extend(self.upload_headers.iter().cloned());
        }
        h
    }

    /// DELETE an object (a missing one is no error, as in S3 itself).
    pub async fn delete(&self, bucket: &str, key: &str) -> Result<(), Failure> {
        let what = format!("S3 DELETE s3://{bucket}/{key}");
        let url = self.url(bucket, key, &[]);
        let resp = self
            .send(&what, reqwest::Method::DELETE, &url, &[], None)
            .await?;
        match resp.status {
            200..=299 | 404 if error_code(&resp.body) != "NoSuchBucket" => Ok(()),
            s => Err(refusal(&what, bucket, s, &resp.body)),
        }
    }

    /// Every object below `prefix` (ListObjectsV2, every page), in key order.
    pub async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<Object>, Failure> {
        let what = format!("S3 list s3://{bucket}/{prefix}");
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = vec![("list-type", "2"), ("prefix", prefix)];
            if let Some(t) = &token {
                q.push(("continuation-token", t.as_str()));
            }
            // The signer sorts the query; S3 wants it sorted in the URL too for some servers.
            q.sort();
            let url = self.url(bucket, "", &q);
            let resp = self
                .send(&what, reqwest::Method::GET, &url, &[], None)
                .await?;
            if resp.status != 200 {
                return Err(refusal(&what, bucket, resp.status, &resp.body));
            }
            let xml = String::from_utf8_lossy(&resp.body);
            for block in xml_blocks(&xml, "Contents") {
                out.push(Object {
                    key: xml_tag(block, "Key").unwrap_or_default(),
                    size: xml_tag(block, "Size")
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0),
                    last_modified: xml_tag(block, "LastModified").unwrap_or_default(),
                });
            }
            token = (xml_tag(&xml, "IsTruncated").as_deref() == Some("true"))
                .then(|| xml_tag(&xml, "NextContinuationToken"))
                .flatten();
            if token.is_none() {
                break;
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Start a multipart upload; its upload id.
    pub async fn create_multipart(&self, bucket: &str, key: &str) -> Result<String, Failure> {
        let what = format!("S3 CreateMultipartUpload s3://{bucket}/{key}");
        let url = self.url(bucket, key, &[("uploads", "")]);
        let headers = self.object_headers(true);
        let resp = self
            .send(&what, reqwest::Method::POST, &url, &headers, None)
            .await?;
        if resp.status != 200 {
            return Err(refusal(&what, bucket, resp.status, &resp.body));
        }
        xml_tag(&String::from_utf8_lossy(&resp.body), "UploadId")
            .ok_or_else(|| Failure::failed(format!("{what}: the answer has no UploadId")))
    }

    /// Upload part `number` (1-based); its ETag.
    pub async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: u32,
        body: bytes::Bytes,
    ) -> Result<String, Failure> {
        let what = format!("S3 UploadPart {number} s3://{bucket}/{key}");
        let n = number.to_string();
        let url = self.url(bucket, key, &[("partNumber", &n), ("uploadId", upload_id)]);
        let resp = self
            .send(&what, reqwest::Method::PUT, &url, &self.sse_c, Some(body))
            .await?;
        if !(200..300).contains(&resp.status) {
            return Err(refusal(&what, bucket, resp.status, &resp.body));
        }
        resp.headers
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| Failure::failed(format!("{what}: the answer has no ETag")))
    }

    /// Complete a multipart upload with the parts' ETags, in order.
    pub async fn complete_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        etags: &[String],
    ) -> Result<(), Failure> {
        let what = format!("S3 CompleteMultipartUpload s3://{bucket}/{key}");
        let url = self.url(bucket, key, &[("uploadId", upload_id)]);
        let mut body = String::from("<CompleteMultipartUpload>");
        for (i, e) in etags.iter().enumerate() {
            body.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
                i + 1,
                e.replace('&', "&amp;").replace('"', "&quot;")
            ));
        }
        body.push_str("</CompleteMultipartUpload>");
        let resp = self
            .send(
                &what,
                reqwest::Method::POST,
                &url,
                &[],
                Some(bytes::Bytes::from(body)),
            )
            .await?;
        // A 200 can still carry an <Error> (S3 documents this for CompleteMultipartUpload).
        if resp.status != 200 || String::from_utf8_lossy(&resp.body).contains("<Error>") {
            return Err(refusal(&what, bucket, resp.status, &resp.body));
        }
        Ok(())
    }

    /// Abort a multipart upload (best effort: its parts are otherwise billed until a lifecycle
    /// rule removes them).
    pub async fn abort_multipart(&self, bucket: &str, key: &str, upload_id: &str) {
        let what = format!("S3 AbortMultipartUpload s3://{bucket}/{key}");
        let url = self.url(bucket, key, &[("uploadId", upload_id)]);
        if let Err(e) = self
            .send(&what, reqwest::Method::DELETE, &url, &[], None)
            .await
        {
            tracing::warn!("{}", e.message);
        }
    }

    pub fn deadline(&self) -> &initbox_runtime::Deadline {
        &self.aws.deadline
    }
}

/// The timeout of one upload (a part of up to 64 MiB on a slow link).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
/// The timeout of a streamed download without a deadline (stalls are caught by the reader).
const LONG: Duration = Duration::from_secs(7 * 24 * 3600);

/// The raw inner text of every `<tag>` element (not unescaped: the caller reads tags inside).
fn xml_blocks<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(s) = rest.find(&open) {
        let after = &rest[s + open.len()..];
        let Some(e) = after.find(&close) else { break };
        out.push(&after[..e]);
        rest = &after[e + close.len()..];
    }
    out
}

/// `<Code>` of an S3 XML error.
pub fn error_code(body: &[u8]) -> String {
    xml_tag(&String::from_utf8_lossy(body), "Code").unwrap_or_default()
}

const CREDENTIAL_CODES: &[&str] = &[
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
];

/// The failure of an S3 answer: credentials rejected (5), a missing bucket (3), else 1.
fn refusal(what: &str, bucket: &str, status: u16, body: &[u8]) -> Failure {
    let code = error_code(body);
    let detail = short_error(body);
    let text = format!("{what}: HTTP {status} {code}{detail}");
    if code == "NoSuchBucket" {
        return Failure::invalid_input(format!("{what}: bucket '{bucket}' does not exist"));
    }
    if status == 401 || status == 403 || CREDENTIAL_CODES.contains(&code.as_str()) {
        return Failure::credentials(format!("{text} (credentials rejected)"));
    }
    Failure::failed(text)
}

/// `s3://bucket/prefix` → (bucket, prefix without leading slash).
pub fn parse_url(url: &str) -> Result<(String, String), Failure> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| Failure::usage(format!("{url}: not an s3:// URL")))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(Failure::usage(format!("{url}: no bucket name")));
    }
    Ok((
        bucket.to_string(),
        prefix.trim_start_matches('/').to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_blocks() {
        assert_eq!(
            parse_url("s3://b/p/q/").unwrap(),
            ("b".to_string(), "p/q/".to_string())
        );
        assert!(parse_url("s3:///x").is_err());
        let xml = "<L><Contents><Key>a&amp;b</Key><Size>3</Size></Contents><Contents><Key>c</Key></Contents></L>";
        let b = xml_blocks(xml, "Contents");
        assert_eq!(b.len(), 2);
        assert_eq!(xml_tag(b[0], "Key").as_deref(), Some("a&b"));
    }

    #[test]
    fn error_codes_map_to_exit_codes() {
        let f = refusal("x", "b", 404, b"<Error><Code>NoSuchBucket</Code></Error>");
        assert_eq!(f.code.0, 3);
        let f = refusal(
            "x",
            "b",
            403,
            b"<Error><Code>InvalidAccessKeyId</Code></Error>",
        );
        assert_eq!(f.code.0, 5);
        let f = refusal("x", "b", 500, b"");
        assert_eq!(f.code.0, 1);
    }
}
