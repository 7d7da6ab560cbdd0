//! Where a download comes from: `http(s)://` (the runtime's HTTP client and TLS), `s3://`
//! (crates/aws, the client restore uses) or `file://`. Each is opened at a byte offset, so a
//! download that stopped resumes where it stopped (`Range: bytes=N-`); a server that answers
//! the whole object instead is noticed and the download starts over.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use initbox_aws::s3::S3;
use initbox_runtime::retry::Attempt;
use initbox_runtime::{Deadline, Failure};
use tokio::io::AsyncReadExt;

/// An opened source.
pub enum Source {
    Http {
        client: reqwest::Client,
        url: reqwest::Url,
        /// `--header`s: the client then follows redirects here, not by itself.
        auth: Option<Arc<Auth>>,
    },
    S3 {
        s3: Arc<S3>,
        bucket: String,
        key: String,
    },
    File {
        path: PathBuf,
    },
}

/// What the source sends from an offset.
pub struct Body {
    /// The offset the data starts at: the one asked for, or 0 when the server sent it all.
    pub from: u64,
    /// The whole object's size, when the source says it.
    pub total: Option<u64>,
    chunks: Chunks,
}

enum Chunks {
    Http(reqwest::Response),
    File(tokio::fs::File, Vec<u8>),
}

impl Body {
    /// The next chunk, `None` at the end; a chunk that does not come within `stall` is an error.
    pub async fn next(&mut self, stall: Duration) -> Result<Option<Bytes>, String> {
        let next = async {
            match &mut self.chunks {
                // Described without the URL: a presigned URL's query is a credential.
                Chunks::Http(r) => r
                    .chunk()
                    .await
                    .map_err(|e| initbox_runtime::http::describe(&e, "--ca-file")),
                Chunks::File(f, buf) => {
                    let n = f.read(buf).await.map_err(|e| e.to_string())?;
                    Ok((n > 0).then(|| Bytes::copy_from_slice(&buf[..n])))
                }
            }
        };
        match tokio::time::timeout(stall, next).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "nothing received for {}",
                humantime::format_duration(stall)
            )),
        }
    }
}

/// Why opening failed: try again (connection refused, 5xx), the range was refused (start over
/// from 0), or a failure with its exit code.
pub enum OpenError {
    Transient(String),
    RangeRefused,
    Fatal(Failure),
}

impl From<Failure> for OpenError {
    fn from(f: Failure) -> Self {
        OpenError::Fatal(f)
    }
}

/// The shared clients a download needs, made on first use (an `s3://` source needs AWS
/// credentials, an http one the TLS configuration).
pub struct Clients {
    pub http: Option<reqwest::Client>,
    pub s3: Option<Arc<S3>>,
    pub auth: Option<Arc<Auth>>,
}

/// The `--header`s and the one origin (the download URL's, https) they are sent to. As curl
/// does, a redirect to another origin is followed without them: the client follows no
/// redirect itself, [`Source::open`] does, within the toolkit's policy.
pub struct Auth {
    /// `scheme://host:port`, as `Url::origin().ascii_serialization()` gives it.
    pub origin: String,
    pub headers: reqwest::header::HeaderMap,
    /// The download URL carries a password: redirects stay on its origin (the policy's rule).
    pub url_password: bool,
}

impl Source {
    /// The source named by `url`: `http(s)://`, `s3://BUCKET/KEY`, `file:///PATH`.
    pub fn parse(url: &str, clients: &Clients) -> Result<Source, Failure> {
        let shown = initbox_runtime::url::display(url);
        if url.starts_with("http://") || url.starts_with("https://") {
            let parsed = reqwest::Url::parse(url)
                .map_err(|e| Failure::usage(format!("{shown}: not a URL: {e}")))?;
            let client = clients
                .http
                .clone()
                .ok_or_else(|| Failure::usage(format!("{shown}: http is not set up")))?;
            Ok(Source::Http {
                client,
                url: parsed,
                auth: clients.auth.clone(),
            })
        } else if url.starts_with("s3://") {
            let (bucket, key) = initbox_aws::s3::parse_url(url)?;
            if key.is_empty() || key.ends_with('/') {
                return Err(Failure::usage(format!("{shown}: names no object (a key)")));
            }
            let s3 = clients
                .s3
                .clone()
                .ok_or_else(|| Failure::usage(format!("{shown}: S3 is not set up")))?;
            Ok(Source::S3 { s3, bucket, key })
        } else if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(Failure::usage(format!(
                    "{shown}: a file:// URL needs an absolute path (file:///PATH)"
                )));
            }
            Ok(Source::File { path: path.into() })
        } else {
            Err(Failure::usage(format!(
                "{shown}: not an http://, https://, s3:// or file:// URL"
            )))
        }
    }

    /// The source for display (no password, no secret query values).
    pub fn display(&self) -> String {
        match self {
            Source::Http { url, .. } => initbox_runtime::url::display(url.as_str()),
            Source::S3 { bucket, key, .. } => format!("s3://{bucket}/{key}"),
            Source::File { path } => format!("file://{}", path.display()),
        }
    }

    /// The file name the source ends with (the name a checksums file lists).
    pub fn file_name(&self) -> String {
        let last = |p: &str| p.rsplit('/').next().unwrap_or_default().to_string();
        match self {
            Source::Http { url, .. } => {
                let seg = url
                    .path_segments()
                    .and_then(|mut s| s.next_back())
                    .unwrap_or_default();
                percent_decode(seg)
            }
            Source::S3 { key, .. } => last(key),
            Source::File { path } => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }

    /// The source of a file beside this one: `NAME` replaced by `sibling` (`--signature`'s
    /// default `NAME.minisig`).
    pub fn beside(&self, suffix: &str) -> Source {
        match self {
            Source::Http { client, url, auth } => {
                let mut u = url.clone();
                u.set_path(&format!("{}{suffix}", url.path()));
                Source::Http {
                    client: client.clone(),
                    url: u,
                    auth: auth.clone(),
                }
            }
            Source::S3 { s3, bucket, key } => Source::S3 {
                s3: Arc::clone(s3),
                bucket: bucket.clone(),
                key: format!("{key}{suffix}"),
            },
            Source::File { path } => {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                Source::File { path: p.into() }
            }
        }
    }

    /// Open the source at byte `offset`.
    pub async fn open(&self, offset: u64, deadline: &Deadline) -> Result<Body, OpenError> {
        let what = self.display();
        match self {
            Source::File { path } => {
                let mut f = tokio::fs::File::open(path).await.map_err(|e| {
                    let msg = format!("cannot open {}: {e}", path.display());
                    OpenError::Fatal(match e.kind() {
                        io::ErrorKind::PermissionDenied => Failure::env_refused(msg),
                        _ => Failure::failed(msg),
                    })
                })?;
                let total = f.metadata().await.ok().map(|m| m.len());
                if total.is_some_and(|t| offset > t) {
                    return Err(OpenError::RangeRefused);
                }
                use tokio::io::AsyncSeekExt;
                f.seek(io::SeekFrom::Start(offset))
                    .await
                    .map_err(|e| OpenError::Transient(e.to_string()))?;
                Ok(Body {
                    from: offset,
                    total,
                    chunks: Chunks::File(f, vec![0u8; 256 * 1024]),
                })
            }
            Source::S3 { s3, bucket, key } => {
                // The S3 client retries transient failures itself, within the deadline.
                match s3.get_from(bucket, key, offset).await {
                    Ok(Some(r)) => http_body(r, offset, &what),
                    Ok(None) => Err(OpenError::Fatal(Failure::failed(format!(
                        "{what}: no such object"
                    )))),
                    Err(f) if offset > 0 && f.message.contains("HTTP 416") => {
                        Err(OpenError::RangeRefused)
                    }
                    Err(f) => Err(OpenError::Fatal(f)),
                }
            }
            Source::Http { client, url, auth } => {
                let resp = match auth {
                    None => get(client, url, None, offset, deadline).await,
                    Some(a) => follow(client, url, a, offset, deadline, &what).await?,
                }
                .map_err(|e| {
                    let why = initbox_runtime::http::describe(&e, "--ca-file");
                    if e.is_connect() || e.is_timeout() || e.is_request() {
                        // A TLS verification failure is not worth repeating.
                        if why.contains("certificate") {
                            OpenError::Fatal(Failure::failed(format!("GET {what}: {why}")))
                        } else {
                            OpenError::Transient(why)
                        }
                    } else {
                        OpenError::Fatal(Failure::failed(format!("GET {what}: {why}")))
                    }
                })?;
                let status = resp.status().as_u16();
                match status {
                    200..=299 => http_body(resp, offset, &what),
                    416 if offset > 0 => Err(OpenError::RangeRefused),
                    401 | 403 => Err(OpenError::Fatal(Failure::credentials(format!(
                        "GET {what}: HTTP {status} (access refused)"
                    )))),
                    408 | 425 | 429 | 500..=599 => {
                        Err(OpenError::Transient(format!("HTTP {status}")))
                    }
                    _ => Err(OpenError::Fatal(Failure::failed(format!(
                        "GET {what}: HTTP {status}"
                    )))),
                }
            }
        }
    }

    /// A small file read whole (a checksums file, a signature), at most `limit` bytes.
    pub async fn read_small(&self, limit: usize, deadline: &Deadline) -> Result<Vec<u8>, Failure> {
        let what = self.display();
        let policy = initbox_runtime::retry::RetryPolicy {
            max_attempts: Some(5),
            ..initbox_runtime::retry::RetryPolicy::REQUESTS
        };
        initbox_runtime::retry::retry(&policy, deadline, &what, |_| async {
            let mut body = match self.open(0, deadline).await {
                Ok(b) => b,
                Err(OpenError::Transient(e)) => return Err(Attempt::transient(e)),
                Err(OpenError::RangeRefused) => unreachable!("offset 0"),
                Err(OpenError::Fatal(f)) => return Err(Attempt::Fatal(f)),
            };
            let mut out = Vec::new();
            while let Some(chunk) = body
                .next(Duration::from_secs(60))
                .await
                .map_err(Attempt::transient)?
            {
                out.extend_from_slice(&chunk);
                if out.len() > limit {
                    return Err(Attempt::Fatal(Failure::invalid_input(format!(
                        "{what}: larger than {}",
                        initbox_runtime::http::human_bytes(limit)
                    ))));
                }
            }
            Ok(out)
        })
        .await
    }
}

/// One GET of `url` from `offset`, with `headers`.
async fn get(
    client: &reqwest::Client,
    url: &reqwest::Url,
    headers: Option<&reqwest::header::HeaderMap>,
    offset: u64,
    deadline: &Deadline,
) -> Result<reqwest::Response, reqwest::Error> {
    let mut req = client.get(url.clone());
    if let Some(h) = headers {
        req = req.headers(h.clone());
    }
    if offset > 0 {
        req = req.header(reqwest::header::RANGE, format!("bytes={offset}-"));
    }
    if let Some(left) = deadline.remaining() {
        req = req.timeout(left);
    }
    initbox_runtime::http::send(req, initbox_runtime::http::Show::Url).await
}

/// GET with `--header`s, following redirects here: the headers go to their origin only (a
/// redirect to another origin is followed without them, as curl does), each hop judged by the
/// toolkit's policy (never down to plain http, at most 10 hops).
async fn follow(
    client: &reqwest::Client,
    url: &reqwest::Url,
    auth: &Auth,
    offset: u64,
    deadline: &Deadline,
    what: &str,
) -> Result<Result<reqwest::Response, reqwest::Error>, OpenError> {
    let mut chain = vec![url.clone()];
    loop {
        let at = chain.last().cloned().unwrap_or_else(|| url.clone());
        let headers = (at.origin().ascii_serialization() == auth.origin).then_some(&auth.headers);
        let resp = match get(client, &at, headers, offset, deadline).await {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok());
        let next = match (resp.status().as_u16(), location) {
            (301 | 302 | 303 | 307 | 308, Some(l)) => at.join(l).map_err(|e| {
                OpenError::Fatal(Failure::failed(format!(
                    "GET {what}: a redirect to a bad URL: {e}"
                )))
            })?,
            _ => return Ok(Ok(resp)),
        };
        initbox_runtime::http::judge(
            &chain,
            &next,
            initbox_runtime::http::MAX_REDIRECTS,
            auth.url_password,
        )
        .map_err(|r| OpenError::Fatal(Failure::failed(format!("GET {what}: {r}"))))?;
        if next.origin().ascii_serialization() != auth.origin {
            tracing::debug!(to = %initbox_runtime::url::display_origin(next.as_str()), "download: a redirect to another origin: the headers are not sent there");
        }
        chain.push(next);
    }
}

/// The body of a 2xx answer to a request from `offset`: a 206 must start there, a 200 is the
/// whole object.
fn http_body(resp: reqwest::Response, offset: u64, what: &str) -> Result<Body, OpenError> {
    if resp.status().as_u16() == 206 {
        let range = resp
            .headers()
            .get(reqwest::header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(content_range);
        return match range {
            Some((start, total)) if start == offset => Ok(Body {
                from: offset,
                total,
                chunks: Chunks::Http(resp),
            }),
            _ => Err(OpenError::Fatal(Failure::failed(format!(
                "GET {what}: a partial answer that does not start at byte {offset}"
            )))),
        };
    }
    let total = resp.content_length();
    Ok(Body {
        from: 0,
        total,
        chunks: Chunks::Http(resp),
    })
}

/// `bytes START-END/TOTAL` → (START, TOTAL if known).
fn content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, _) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()))
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(content_range("bytes 100-199/200"), Some((100, Some(200))));
        assert_eq!(content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(content_range("items 1-2/3"), None);
    }

    #[test]
    fn names_are_decoded() {
        assert_eq!(percent_decode("model%20v1.bin"), "model v1.bin");
        assert_eq!(percent_decode("a%2"), "a%2");
    }
}
