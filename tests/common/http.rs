//! The one HTTP/1.1 test server of the end-to-end tests: plain or TLS (rustls), it records every
//! request (request line, headers, body) and answers what a handler decides from the request's
//! number and text: a status, headers, a body (or one that never ends) after a delay.
//! It is also the capture server of the notification tests: [`HttpServer::capture`] hands the
//! handler the parsed [`Request`] (method, target, headers, body, arrival time) and
//! [`HttpServer::received`], [`HttpServer::to`] and [`HttpServer::one`] return what arrived.
//! `tests/wait_for.rs`, `tests/http_clients.rs`, `tests/notify.rs`, `tests/redaction.rs` and the
//! echo server ([`super::echo`]) build on it.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The request target as sent: path and query, or the absolute form a proxy receives.
    pub target: String,
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// The whole request as text (request line, headers, body).
    pub text: String,
    /// When it was read in full.
    pub at: Instant,
}

impl Request {
    /// The value of header `name` (any case); a missing header fails the test.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no header {name} in {:?}", self.headers))
    }
}

/// What the server answers to one request.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    /// Waited before answering (a slow server).
    pub delay: Duration,
}

pub enum Body {
    Bytes(Vec<u8>),
    /// No Content-Length, zeros until the client hangs up (or 8 GiB, far past any cap).
    Endless,
    /// The Content-Length of the whole body, then only its first `usize` bytes, then the
    /// connection is closed (a transfer cut mid-way). `Duration`: how long to hold the
    /// connection open, silent, before closing it (a stalled transfer).
    Cut(Vec<u8>, usize, Duration),
}

impl Answer {
    /// `status` with a body of `content_type`.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Answer {
        Answer {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: Body::Bytes(body.into()),
            delay: Duration::ZERO,
        }
    }

    /// `status` and `body` with no header but the framing ones (no Content-Type).
    pub fn bare(status: u16, body: impl Into<Vec<u8>>) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: Body::Bytes(body.into()),
            delay: Duration::ZERO,
        }
    }

    /// `status` with a JSON body.
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Answer {
        Answer::new(status, "application/json", body)
    }

    /// A 307 to `location`.
    pub fn redirect(location: &str) -> Answer {
        Answer::new(307, "text/plain", "").header("Location", location)
    }

    /// `status`, then a body that never ends.
    pub fn endless(status: u16) -> Answer {
        Answer {
            body: Body::Endless,
            ..Answer::json(status, "")
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Answer {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn after(mut self, delay: Duration) -> Answer {
        self.delay = delay;
        self
    }
}

type Handler = dyn Fn(usize, &Request) -> Answer + Send + Sync;

/// A running server; it lives as long as the test process.
pub struct HttpServer {
    pub port: u16,
    hits: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl HttpServer {
    /// A plain HTTP server answering with `handler(request number from 1, request text)`.
    pub fn start(handler: impl Fn(usize, &str) -> Answer + Send + Sync + 'static) -> HttpServer {
        HttpServer::start_tls(None, handler)
    }

    /// The same over TLS when `tls` is given.
    pub fn start_tls(
        tls: Option<Arc<rustls::ServerConfig>>,
        handler: impl Fn(usize, &str) -> Answer + Send + Sync + 'static,
    ) -> HttpServer {
        HttpServer::capture_tls(tls, move |n, req| handler(n, &req.text))
    }

    /// A plain HTTP capture server answering with `handler(request number from 1, request)`.
    pub fn capture(
        handler: impl Fn(usize, &Request) -> Answer + Send + Sync + 'static,
    ) -> HttpServer {
        HttpServer::capture_tls(None, handler)
    }

    /// The same over TLS when `tls` is given.
    pub fn capture_tls(
        tls: Option<Arc<rustls::ServerConfig>>,
        handler: impl Fn(usize, &Request) -> Answer + Send + Sync + 'static,
    ) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let (h, r) = (Arc::clone(&hits), Arc::clone(&requests));
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (h, r, handler, tls) = (
                    Arc::clone(&h),
                    Arc::clone(&r),
                    Arc::clone(&handler),
                    tls.clone(),
                );
                thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                    match tls {
                        Some(cfg) => {
                            let Ok(conn) = rustls::ServerConnection::new(cfg) else {
                                return;
                            };
                            serve(rustls::StreamOwned::new(conn, stream), &h, &r, &*handler);
                        }
                        None => serve(stream, &h, &r, &*handler),
                    }
                });
            }
        });
        HttpServer {
            port,
            hits,
            requests,
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `SCHEME://127.0.0.1:PORT{path}` (`webhook+http`, `ntfy`...).
    pub fn url_as(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    /// `127.0.0.1:PORT`.
    pub fn authority(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Requests answered or being answered so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Every request received so far, as text (request line, headers, body).
    pub fn requests(&self) -> Vec<String> {
        self.received().into_iter().map(|r| r.text).collect()
    }

    /// Every request received so far, parsed, in arrival order.
    pub fn received(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// The requests whose target starts with `prefix`.
    pub fn to(&self, prefix: &str) -> Vec<Request> {
        self.received()
            .into_iter()
            .filter(|r| r.target.starts_with(prefix))
            .collect()
    }

    /// The one request whose target starts with `prefix`; none or several fail the test.
    pub fn one(&self, prefix: &str) -> Request {
        let v = self.to(prefix);
        assert_eq!(v.len(), 1, "one request to {prefix}, got {v:?}");
        v.into_iter().next().unwrap()
    }
}

fn serve<S: Read + Write>(
    stream: S,
    hits: &AtomicUsize,
    requests: &Mutex<Vec<Request>>,
    handler: &Handler,
) {
    let mut reader = BufReader::new(stream);
    let mut text = String::new();
    let mut head = String::new();
    if reader.read_line(&mut head).unwrap_or(0) == 0 {
        return;
    }
    text.push_str(&head);
    let mut parts = head.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        text.push_str(&line);
        if line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.trim_end().split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len.min(1 << 20)];
    let _ = reader.read_exact(&mut body);
    text.push_str(&String::from_utf8_lossy(&body));
    let req = Request {
        method,
        target,
        headers,
        body,
        text,
        at: Instant::now(),
    };
    let n = hits.fetch_add(1, Ordering::SeqCst) + 1;
    requests.lock().unwrap().push(req.clone());
    let answer = handler(n, &req);
    thread::sleep(answer.delay);
    let mut s = reader.into_inner();
    let mut head = format!("HTTP/1.1 {} X\r\n", answer.status);
    for (k, v) in &answer.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    match &answer.body {
        Body::Bytes(b) => {
            head.push_str(&format!(
                "Content-Length: {}\r\nConnection: close\r\n\r\n",
                b.len()
            ));
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(b);
        }
        Body::Cut(b, n, hold) => {
            head.push_str(&format!(
                "Content-Length: {}\r\nConnection: close\r\n\r\n",
                b.len()
            ));
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&b[..(*n).min(b.len())]);
            let _ = s.flush();
            thread::sleep(*hold);
            return;
        }
        Body::Endless => {
            head.push_str("Connection: close\r\n\r\n");
            let _ = s.write_all(head.as_bytes());
            let chunk = vec![b'0'; 64 * 1024];
            for _ in 0..(128 * 1024) {
                if s.write_all(&chunk).is_err() {
                    break;
                }
            }
        }
    }
    let _ = s.flush();
}
