//! One SMTP delivery attempt: lettre speaks the protocol (greeting, EHLO, AUTH, MAIL, RCPT,
//! DATA) over a stream set up here, so that TLS is the runtime's one rustls configuration (its
//! verifier, `--ca-file` pinning, client certificates) for implicit TLS and STARTTLS alike, and
//! so that `-v -v` shows the SMTP dialogue (AUTH payloads and the message body never).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream};
use lettre::transport::smtp::commands::Starttls;
use lettre::transport::smtp::extension::{ClientId, Extension};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::target::SmtpTls;

/// Where and how to deliver.
pub struct Params {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// The runtime's client configuration (present unless `tls=none`).
    pub tls_config: Option<Arc<rustls::ClientConfig>>,
    pub hello: ClientId,
    pub credentials: Option<Credentials>,
}

/// Why an attempt failed.
#[derive(Debug)]
pub enum SmtpError {
    /// Connecting or the connection broke: worth another attempt.
    Network(io::Error),
    /// The TLS handshake failed (the error carries the rustls error for a named reason).
    Tls(io::Error),
    /// The server does not offer what the URL asks for (STARTTLS).
    Refused(String),
    /// An SMTP answer or a protocol error, as lettre reports it.
    Smtp(lettre::transport::smtp::Error),
}

impl From<lettre::transport::smtp::Error> for SmtpError {
    fn from(e: lettre::transport::smtp::Error) -> Self {
        SmtpError::Smtp(e)
    }
}

/// Connect, say hello, upgrade to TLS as asked, authenticate, send `message`, quit.
pub async fn send(p: &Params, envelope: &Envelope, message: &[u8]) -> Result<(), SmtpError> {
    let tcp = TcpStream::connect((p.host.as_str(), p.port))
        .await
        .map_err(SmtpError::Network)?;
    let peer = tcp.peer_addr().map_err(SmtpError::Network)?;
    let mut conn = match p.tls {
        SmtpTls::None => {
            AsyncSmtpConnection::connect_with_transport(Box::new(Traced::new(tcp, peer)), &p.hello)
                .await?
        }
        SmtpTls::Implicit => {
            let tls = handshake(p, tcp).await?;
            AsyncSmtpConnection::connect_with_transport(Box::new(Traced::new(tls, peer)), &p.hello)
                .await?
        }
        SmtpTls::StartTls => {
            // The plain-text part (greeting, EHLO, STARTTLS) runs on a duplicate of the socket;
            // the TLS session then runs on the other descriptor of the same connection.
            let std = tcp.into_std().map_err(SmtpError::Network)?;
            let dup = std.try_clone().map_err(SmtpError::Network)?;
            let plain = TcpStream::from_std(std).map_err(SmtpError::Network)?;
            let mut first = AsyncSmtpConnection::connect_with_transport(
                Box::new(Traced::new(plain, peer)),
                &p.hello,
            )
            .await?;
            if !first.server_info().supports_feature(Extension::StartTls) {
                return Err(SmtpError::Refused(
                    "the server does not offer STARTTLS (tls=implicit for port 465; tls=none only \
                     on a trusted network)"
                        .into(),
                ));
            }
            first.command(Starttls).await?;
            // Nothing more is read from or written to the plain side: the server now waits for
            // the TLS ClientHello. Closing this descriptor leaves the connection open.
            drop(first);
            let tcp = TcpStream::from_std(dup).map_err(SmtpError::Network)?;
            let tls = handshake(p, tcp).await?;
            // lettre's connection starts by reading a greeting, which after STARTTLS the server
            // does not send again (RFC 3207 §4.2: the client starts over with EHLO): the
            // greeting is replayed locally, never sent by or to the server.
            AsyncSmtpConnection::connect_with_transport(
                Box::new(Replay::new(
                    b"220 STARTTLS done\r\n".to_vec(),
                    Traced::new(tls, peer),
                )),
                &p.hello,
            )
            .await?
        }
    };
    if let Some(creds) = &p.credentials {
        conn.auth(&[Mechanism::Plain, Mechanism::Login], creds)
            .await?;
    }
    conn.send(envelope, message).await?;
    let _ = conn.quit().await;
    Ok(())
}

async fn handshake(
    p: &Params,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, SmtpError> {
    let config = p
        .tls_config
        .clone()
        .ok_or_else(|| SmtpError::Refused("no TLS configuration".into()))?;
    let name = ServerName::try_from(p.host.clone())
        .map_err(|e| SmtpError::Refused(format!("'{}' is not a TLS server name: {e}", p.host)))?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(SmtpError::Tls)
}

/// A stream that logs the SMTP dialogue at trace level, line by line: `S:` what the server
/// said, `C:` what the client sent. AUTH payloads (the argument of AUTH and every answer to a
/// 334 challenge) are replaced by `[hidden]`; the message body is summed up by its size. Lines
/// pass the log scrubber as well.
#[derive(Debug)]
struct Traced<S> {
    inner: S,
    peer: SocketAddr,
    on: bool,
    read_line: Vec<u8>,
    write_line: Vec<u8>,
    /// The last server line was a 334 challenge: the next client line is an AUTH payload.
    challenge: bool,
    /// Inside DATA (after 354, until the lone "."): bytes of the body so far.
    body: Option<usize>,
}

impl<S> Traced<S> {
    fn new(inner: S, peer: SocketAddr) -> Self {
        Traced {
            inner,
            peer,
            on: tracing::enabled!(tracing::Level::TRACE),
            read_line: Vec::new(),
            write_line: Vec::new(),
            challenge: false,
            body: None,
        }
    }

    fn server_line(&mut self, line: &str) {
        let line = line.trim_end_matches(['\r', '\n']);
        let last = line.as_bytes().get(3) != Some(&b'-');
        if last {
            self.challenge = line.starts_with("334");
            if line.starts_with("354") {
                self.body = Some(0);
            }
        }
        tracing::trace!("smtp S: {line}");
    }

    fn client_line(&mut self, line: &str) {
        let line = line.trim_end_matches(['\r', '\n']);
        if let Some(n) = self.body.as_mut() {
            if line == "." {
                tracing::trace!("smtp C: [message: {n} bytes]");
                tracing::trace!("smtp C: .");
                self.body = None;
            } else {
                *n += line.len() + 2;
            }
            return;
        }
        if std::mem::take(&mut self.challenge) {
            tracing::trace!("smtp C: [hidden]");
            return;
        }
        let mut words = line.split(' ');
        match words.next() {
            Some(verb) if verb.eq_ignore_ascii_case("AUTH") => {
                let mechanism = words.next().unwrap_or_default();
                if words.next().is_some() {
                    tracing::trace!("smtp C: AUTH {mechanism} [hidden]");
                } else {
                    tracing::trace!("smtp C: AUTH {mechanism}");
                }
            }
            _ => tracing::trace!("smtp C: {line}"),
        }
    }
}

/// Split complete lines off `buf`.
fn lines(buf: &mut Vec<u8>) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(i) = buf.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = buf.drain(..=i).collect();
        out.push(String::from_utf8_lossy(&line).into_owned());
    }
    out
}

impl<S: AsyncRead + Unpin> AsyncRead for Traced<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.on && matches!(r, Poll::Ready(Ok(()))) {
            this.read_line.extend_from_slice(&buf.filled()[before..]);
            for line in lines(&mut this.read_line) {
                this.server_line(&line);
            }
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Traced<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, data);
        if this.on
            && let Poll::Ready(Ok(n)) = r
        {
            this.write_line.extend_from_slice(&data[..n]);
            for line in lines(&mut this.write_line) {
                this.client_line(&line);
            }
        }
        r
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Send + Sync + Unpin + std::fmt::Debug> AsyncTokioStream
    for Traced<S>
{
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer)
    }
}

/// `prefix` is read first, then the inner stream.
#[derive(Debug)]
struct Replay<S> {
    prefix: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S> Replay<S> {
    fn new(prefix: Vec<u8>, inner: S) -> Self {
        Replay {
            prefix,
            at: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.at < this.prefix.len() {
            let n = (this.prefix.len() - this.at).min(buf.remaining());
            buf.put_slice(&this.prefix[this.at..this.at + n]);
            this.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replay<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<S: AsyncTokioStream> AsyncTokioStream for Replay<S> {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_payloads_and_the_body_are_never_traced_lines() {
        let mut t = Traced::new((), "127.0.0.1:25".parse().unwrap());
        // Only the state machine is exercised here; the log lines are checked end to end.
        t.client_line("AUTH PLAIN AHVzZXIAcGFzcw==\r\n");
        t.server_line("334 VXNlcm5hbWU6\r\n");
        assert!(t.challenge);
        t.client_line("dXNlcg==\r\n");
        assert!(!t.challenge);
        t.server_line("354 go ahead\r\n");
        assert_eq!(t.body, Some(0));
        t.client_line("secret body line\r\n");
        assert_eq!(t.body, Some(18));
        t.client_line(".\r\n");
        assert_eq!(t.body, None);
        let mut b = b"250-a\r\n250 b\r\npartial".to_vec();
        assert_eq!(lines(&mut b), vec!["250-a\r\n", "250 b\r\n"]);
        assert_eq!(b, b"partial");
    }
}
