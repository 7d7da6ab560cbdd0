//! git's smart HTTP over the toolkit's one HTTP client: gix speaks the protocol, this module
//! moves its requests through reqwest on the runtime's rustls configuration (system roots plus
//! `--ca-file`, client certificates, the one redirect policy), so there is no curl, no OpenSSL
//! and no second TLS stack in the binary.
//!
//! gix drives the transport from a blocking thread; each request is sent on the applet's tokio
//! runtime with [`tokio::runtime::Handle::block_on`] and its body read chunk by chunk, so a
//! pack of any size streams through without being held in memory.
//!
//! The token is added here as `Authorization: Basic` (user name and token, as git's credential
//! helpers send it), never through gix's credential machinery, which would prompt or run
//! helpers. It is never sent over plain `http://` (refused before any request, as git does for
//! credentials it would send in clear text).

use std::io::{self, BufRead, Read, Write};
use std::sync::{Arc, Mutex};

use gix_transport::client::blocking_io::http::{GetResponse, Http, PostBodyDataKind, PostResponse};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::runtime::Handle;

/// What the last response said, for the applet's own error (gix's chain is generic).
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// The last HTTP status received.
    pub status: Option<u16>,
    /// Response body bytes received so far (for the progress lines).
    pub bytes: u64,
}

/// What every request needs.
#[derive(Clone)]
struct Core {
    client: reqwest::Client,
    handle: Handle,
    authorization: Option<HeaderValue>,
    seen: Arc<Mutex<Seen>>,
}

/// A response: its header lines, its body, and where a followed redirect moved the base.
struct Answer {
    head: Vec<u8>,
    body: Body,
    redirected_base: Option<String>,
}

impl Core {
    fn headers(&self, lines: impl IntoIterator<Item = impl AsRef<str>>) -> HeaderMap {
        let mut map = HeaderMap::new();
        for line in lines {
            if let Some((name, value)) = line.as_ref().split_once(':')
                && let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.trim().as_bytes()),
                    HeaderValue::from_str(value.trim()),
                )
            {
                map.append(name, value);
            }
        }
        if let Some(auth) = &self.authorization {
            map.insert(reqwest::header::AUTHORIZATION, auth.clone());
        }
        map
    }

    /// Send one request and turn its status into what gix expects: 401 is `PermissionDenied`
    /// wrapping `AuthenticationRequired`, any other failure status an error naming it.
    fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
        base_url: &str,
    ) -> io::Result<Answer> {
        let response = self
            .handle
            .block_on(request.send())
            .map_err(|e| io::Error::other(initbox_runtime::http::describe(&e, "--ca-file")))?;
        let status = response.status();
        if let Ok(mut seen) = self.seen.lock() {
            seen.status = Some(status.as_u16());
        }
        // A redirect the client followed (same origin only: the requests carry credentials)
        // moves the base of every later request, as git does.
        let actual = response.url().as_str();
        let redirected_base = if actual != url
            && let Some(tail) = url.strip_prefix(base_url)
            && let Some(base) = actual.strip_suffix(tail)
        {
            Some(base.to_string())
        } else {
            None
        };
        if status == reqwest::StatusCode::UNAUTHORIZED {
            let www_authenticate = response
                .headers()
                .get_all(reqwest::header::WWW_AUTHENTICATE)
                .iter()
                .map(|v| v.as_bytes().into())
                .collect();
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                gix_transport::client::AuthenticationRequired { www_authenticate },
            ));
        }
        if !status.is_success() {
            return Err(io::Error::other(format!(
                "the server answered HTTP {}",
                status.as_u16()
            )));
        }
        let mut head = Vec::new();
        for (name, value) in response.headers() {
            head.extend_from_slice(name.as_str().as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.push(b'\n');
        }
        Ok(Answer {
            head,
            body: Body {
                response: Some(response),
                handle: self.handle.clone(),
                seen: self.seen.clone(),
                chunk: bytes_empty(),
            },
            redirected_base,
        })
    }
}

fn bytes_empty() -> io::Cursor<Vec<u8>> {
    io::Cursor::new(Vec::new())
}

/// The `Http` implementation handed to gix.
pub struct Remote {
    core: Core,
    redirected_base: Option<String>,
}

impl Remote {
    pub fn new(
        client: reqwest::Client,
        handle: Handle,
        authorization: Option<HeaderValue>,
        seen: Arc<Mutex<Seen>>,
    ) -> Self {
        Remote {
            core: Core {
                client,
                handle,
                authorization,
                seen,
            },
            redirected_base: None,
        }
    }

    /// `url` and its base after an earlier redirect moved the repository.
    fn effective(&self, url: &str, base_url: &str) -> (String, String) {
        match (&self.redirected_base, url.strip_prefix(base_url)) {
            (Some(base), Some(tail)) => (format!("{base}{tail}"), base.clone()),
            _ => (url.to_string(), base_url.to_string()),
        }
    }
}

fn gix_error(e: io::Error) -> gix::error::Error {
    gix::error::Error::from_error(e)
}

impl Http for Remote {
    type Headers = Lazy<io::Cursor<Vec<u8>>>;
    type ResponseBody = Lazy<Body>;
    type PostBody = PostBody;

    fn get(
        &mut self,
        url: &str,
        base_url: &str,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> gix::error::Result<GetResponse<Self::Headers, Self::ResponseBody>> {
        let (url, base) = self.effective(url, base_url);
        let request = self
            .core
            .client
            .get(&url)
            .headers(self.core.headers(headers));
        let answer = self.core.send(request, &url, &base).map_err(gix_error)?;
        if answer.redirected_base.is_some() {
            self.redirected_base = answer.redirected_base;
        }
        Ok(GetResponse {
            headers: Lazy::Ready(io::Cursor::new(answer.head)),
            body: Lazy::Ready(answer.body),
        })
    }

    fn post(
        &mut self,
        url: &str,
        base_url: &str,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
        _body: PostBodyDataKind,
    ) -> gix::error::Result<PostResponse<Self::Headers, Self::ResponseBody, Self::PostBody>> {
        // git's requests are small (wants, haves, "done"): gix writes the whole body, drops
        // the writer, then reads the headers; the request goes out at that first read.
        let (url, base) = self.effective(url, base_url);
        let request = self
            .core
            .client
            .post(&url)
            .headers(self.core.headers(headers));
        let exchange = Arc::new(Mutex::new(Exchange {
            core: self.core.clone(),
            request: Some((request, url, base)),
            written: Vec::new(),
            head: None,
            body: None,
        }));
        Ok(PostResponse {
            post_body: PostBody {
                exchange: exchange.clone(),
            },
            headers: Lazy::Head(exchange.clone()),
            body: Lazy::Body(exchange),
        })
    }

    fn configure(&mut self, _config: &dyn std::any::Any) -> gix::error::Result {
        // Options come from initbox's flags, not from git configuration.
        Ok(())
    }

    fn redirected_base_url(&self) -> Option<String> {
        self.redirected_base.clone()
    }
}

/// A POST: its body collected until the response is first read, then the response.
pub struct Exchange {
    core: Core,
    request: Option<(reqwest::RequestBuilder, String, String)>,
    written: Vec<u8>,
    head: Option<Vec<u8>>,
    body: Option<Body>,
}

impl Exchange {
    fn sent(&mut self) -> io::Result<()> {
        if let Some((request, url, base)) = self.request.take() {
            let body = std::mem::take(&mut self.written);
            let answer = self.core.send(request.body(body), &url, &base)?;
            self.head = Some(answer.head);
            self.body = Some(answer.body);
        }
        Ok(())
    }
}

fn lock(exchange: &Mutex<Exchange>) -> io::Result<std::sync::MutexGuard<'_, Exchange>> {
    exchange
        .lock()
        .map_err(|_| io::Error::other("the HTTP exchange is poisoned"))
}

/// The body gix writes for a POST.
pub struct PostBody {
    exchange: Arc<Mutex<Exchange>>,
}

impl Write for PostBody {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut e = lock(&self.exchange)?;
        if e.request.is_none() {
            return Err(io::Error::other("the request was already sent"));
        }
        e.written.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A reader that is either there (GET), or a POST's headers or body, sent on first read.
pub enum Lazy<R> {
    Ready(R),
    Head(Arc<Mutex<Exchange>>),
    Body(Arc<Mutex<Exchange>>),
}

impl<R: BufRead> Lazy<R> {
    fn ready(&mut self) -> io::Result<&mut R>
    where
        R: FromAnswer,
    {
        let taken = match self {
            Lazy::Ready(r) => return Ok(r),
            Lazy::Head(x) | Lazy::Body(x) => {
                let mut e = lock(x)?;
                e.sent()?;
                R::from_exchange(&mut e)?
            }
        };
        *self = Lazy::Ready(taken);
        match self {
            Lazy::Ready(r) => Ok(r),
            _ => unreachable!("just set"),
        }
    }
}

/// How a reader comes out of a sent POST.
pub trait FromAnswer: Sized {
    fn from_exchange(e: &mut Exchange) -> io::Result<Self>;
}

impl FromAnswer for io::Cursor<Vec<u8>> {
    fn from_exchange(e: &mut Exchange) -> io::Result<Self> {
        Ok(io::Cursor::new(e.head.take().unwrap_or_default()))
    }
}

impl FromAnswer for Body {
    fn from_exchange(e: &mut Exchange) -> io::Result<Self> {
        e.body
            .take()
            .ok_or_else(|| io::Error::other("the response body was already read"))
    }
}

impl<R: BufRead + FromAnswer> Read for Lazy<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.ready()?.read(buf)
    }
}

impl<R: BufRead + FromAnswer> BufRead for Lazy<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.ready()?.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        if let Lazy::Ready(r) = self {
            r.consume(amount);
        }
    }
}

/// A response body, streamed chunk by chunk.
pub struct Body {
    response: Option<reqwest::Response>,
    handle: Handle,
    seen: Arc<Mutex<Seen>>,
    chunk: io::Cursor<Vec<u8>>,
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = {
            let data = self.fill_buf()?;
            let n = data.len().min(buf.len());
            buf[..n].copy_from_slice(&data[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Body {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.chunk.position() as usize >= self.chunk.get_ref().len() {
            let Some(response) = self.response.as_mut() else {
                return Ok(&[]);
            };
            match self.handle.block_on(response.chunk()) {
                Ok(Some(bytes)) => {
                    if let Ok(mut seen) = self.seen.lock() {
                        seen.bytes += bytes.len() as u64;
                    }
                    self.chunk = io::Cursor::new(bytes.to_vec());
                }
                Ok(None) => {
                    self.response = None;
                    return Ok(&[]);
                }
                Err(e) => {
                    return Err(io::Error::other(initbox_runtime::http::describe(
                        &e,
                        "--ca-file",
                    )));
                }
            }
        }
        self.chunk.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.chunk.consume(amount);
    }
}
