//! Where versions live: a directory (`file://`), an S3 prefix (`s3://`), or a tree served over
//! `http(s)://` (read only). Archives are read and written as streams: a download is handed to
//! a blocking reader through a small bounded channel (at most [`READ_CHANNEL`] chunks in
//! flight), an upload arrives as parts of [`PART_SIZE`] from a blocking writer.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use initbox_aws::s3::S3;
use initbox_runtime::{Deadline, Failure};
use tokio::sync::mpsc;

/// Size of one upload part (S3's minimum is 5 MiB; 8 MiB parts reach S3's 10 000-part limit
/// at 78 GiB, so parts grow past that, see [`part_size`]).
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Chunks of a download buffered between the network and the unpacker.
pub const READ_CHANNEL: usize = 32;

/// A repository store.
pub enum Store {
    File {
        dir: PathBuf,
    },
    S3 {
        s3: Arc<S3>,
        bucket: String,
        /// Empty or ending with `/`.
        prefix: String,
    },
    Http {
        http: reqwest::Client,
        /// Ending with `/`.
        base: reqwest::Url,
        deadline: Deadline,
    },
}

impl Store {
    pub fn s3(s3: Arc<S3>, url: &str) -> Result<Store, Failure> {
        let (bucket, mut prefix) = initbox_aws::s3::parse_url(url)?;
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        Ok(Store::S3 { s3, bucket, prefix })
    }

    /// The repository for display.
    pub fn display(&self) -> String {
        match self {
            Store::File { dir } => format!("file://{}", dir.display()),
            Store::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{prefix}"),
            Store::Http { base, .. } => initbox_runtime::url::display(base.as_str()),
        }
    }

    /// The names directly in the repository.
    pub async fn list(&self) -> Result<Vec<String>, Failure> {
        match self {
            Store::File { dir } => {
                let rd = match std::fs::read_dir(dir) {
                    Ok(rd) => rd,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        return Err(Failure::invalid_input(format!(
                            "repository {} does not exist",
                            dir.display()
                        )));
                    }
                    Err(e) => {
                        return Err(Failure::env_refused(format!(
                            "cannot list {}: {e}",
                            dir.display()
                        )));
                    }
                };
                Ok(rd
                    .filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect())
            }
            Store::S3 { s3, bucket, prefix } => Ok(s3
                .list(bucket, prefix)
                .await?
                .into_iter()
                .filter_map(|o| o.key.strip_prefix(prefix.as_str()).map(str::to_string))
                .filter(|k| !k.contains('/'))
                .collect()),
            Store::Http {
                http,
                base,
                deadline,
            } => {
                let body = http_get_small(http, deadline, base.clone())
                    .await?
                    .ok_or_else(|| {
                        Failure::invalid_input(format!(
                            "{}: no index there (HTTP 404)",
                            self.display()
                        ))
                    })?;
                Ok(index_names(&String::from_utf8_lossy(&body)))
            }
        }
    }

    /// A small object whole; `None` when it does not exist.
    pub async fn get_small(&self, name: &str) -> Result<Option<Vec<u8>>, Failure> {
        match self {
            Store::File { dir } => match std::fs::read(dir.join(name)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Failure::env_refused(format!(
                    "cannot read {}: {e}",
                    dir.join(name).display()
                ))),
            },
            Store::S3 { s3, bucket, prefix } => {
                s3.get_small(bucket, &format!("{prefix}{name}")).await
            }
            Store::Http {
                http,
                base,
                deadline,
            } => {
                let url = base.join(name).map_err(|e| {
                    Failure::invalid_input(format!("{name}: not a path below the index: {e}"))
                })?;
                http_get_small(http, deadline, url).await
            }
        }
    }

    fn read_only(&self) -> Result<(), Failure> {
        match self {
            Store::Http { .. } => Err(Failure::usage(format!(
                "{}: an http(s) repository is read only (back up to file:// or s3://)",
                self.display()
            ))),
            _ => Ok(()),
        }
    }

    /// Write a small object (atomically for files).
    pub async fn put_small(&self, name: &str, body: Vec<u8>) -> Result<(), Failure> {
        self.read_only()?;
        match self {
            Store::File { dir } => initbox_runtime::atomic::write(
                &dir.join(name),
                &body,
                &initbox_runtime::atomic::WriteOptions {
                    mode: 0o644,
                    owner: None,
                    create_dirs: true,
                },
            ),
            Store::S3 { s3, bucket, prefix } => {
                s3.put(bucket, &format!("{prefix}{name}"), Bytes::from(body))
                    .await
            }
            Store::Http { .. } => unreachable!(),
        }
    }

    /// Write a small object only if none exists; `false` when one does.
    pub async fn put_if_absent(&self, name: &str, body: Vec<u8>) -> Result<bool, Failure> {
        self.read_only()?;
        match self {
            Store::File { dir } => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    Failure::env_refused(format!("cannot create {}: {e}", dir.display()))
                })?;
                // Written aside, then linked into place: link(2) fails if the name exists,
                // and the content is complete the moment it appears.
                let tmp = dir.join(format!(".{name}.{}", rand::random::<u64>()));
                let mut f = std::fs::File::create(&tmp).map_err(|e| {
                    Failure::env_refused(format!("cannot write {}: {e}", tmp.display()))
                })?;
                f.write_all(&body).and_then(|_| f.sync_all()).map_err(|e| {
                    Failure::env_refused(format!("cannot write {}: {e}", tmp.display()))
                })?;
                let r = std::fs::hard_link(&tmp, dir.join(name));
                let _ = std::fs::remove_file(&tmp);
                match r {
                    Ok(()) => Ok(true),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
                    Err(e) => Err(Failure::env_refused(format!(
                        "cannot write {}: {e}",
                        dir.join(name).display()
                    ))),
                }
            }
            Store::S3 { s3, bucket, prefix } => {
                s3.put_if_absent(bucket, &format!("{prefix}{name}"), Bytes::from(body))
                    .await
            }
            Store::Http { .. } => unreachable!(),
        }
    }

    pub async fn delete(&self, name: &str) -> Result<(), Failure> {
        self.read_only()?;
        match self {
            Store::File { dir } => match std::fs::remove_file(dir.join(name)) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(Failure::env_refused(format!(
                    "cannot remove {}: {e}",
                    dir.join(name).display()
                ))),
            },
            Store::S3 { s3, bucket, prefix } => s3.delete(bucket, &format!("{prefix}{name}")).await,
            Store::Http { .. } => unreachable!(),
        }
    }

    /// A blocking reader of an archive; `None` when it does not exist. A download that sends
    /// nothing for `idle` fails (a stalled connection never hangs a restore).
    pub async fn reader(
        &self,
        name: &str,
        idle: Duration,
    ) -> Result<Option<Box<dyn Read + Send>>, Failure> {
        let resp = match self {
            Store::File { dir } => {
                return match std::fs::File::open(dir.join(name)) {
                    Ok(f) => Ok(Some(Box::new(io::BufReader::with_capacity(256 * 1024, f)))),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(Failure::env_refused(format!(
                        "cannot open {}: {e}",
                        dir.join(name).display()
                    ))),
                };
            }
            Store::S3 { s3, bucket, prefix } => {
                match s3.get(bucket, &format!("{prefix}{name}")).await? {
                    Some(r) => r,
                    None => return Ok(None),
                }
            }
            Store::Http {
                http,
                base,
                deadline,
            } => {
                let url = base.join(name).map_err(|e| {
                    Failure::invalid_input(format!("{name}: not a path below the index: {e}"))
                })?;
                let shown = initbox_runtime::url::display(url.as_str());
                let mut req = http.get(url);
                if let Some(left) = deadline.remaining() {
                    req = req.timeout(left);
                }
                let resp = req.send().await.map_err(|e| {
                    Failure::failed(format!("GET {shown}: {}", initbox_aws::http::chain(&e)))
                })?;
                match resp.status().as_u16() {
                    200..=299 => resp,
                    404 => return Ok(None),
                    s => return Err(Failure::failed(format!("GET {shown}: HTTP {s}"))),
                }
            }
        };
        Ok(Some(Box::new(bridge(resp, idle))))
    }

    /// Upload an archive from parts sent on `rx` (closed at the end); small archives (one
    /// part) in one PUT, larger ones as an S3 multipart upload (aborted on failure).
    pub async fn upload(&self, name: &str, mut rx: mpsc::Receiver<Bytes>) -> Result<(), Failure> {
        self.read_only()?;
        match self {
            Store::File { dir } => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    Failure::env_refused(format!("cannot create {}: {e}", dir.display()))
                })?;
                let tmp = dir.join(format!(".{name}.{}.tmp", rand::random::<u64>()));
                let write = async {
                    let mut f = std::fs::File::create(&tmp)?;
                    while let Some(chunk) = rx.recv().await {
                        f.write_all(&chunk)?;
                    }
                    f.sync_all()?;
                    std::fs::rename(&tmp, dir.join(name))?;
                    std::fs::File::open(dir)?.sync_all()
                };
                write.await.map_err(|e| {
                    let _ = std::fs::remove_file(&tmp);
                    Failure::env_refused(format!("cannot write {}: {e}", dir.join(name).display()))
                })
            }
            Store::S3 { s3, bucket, prefix } => {
                let key = format!("{prefix}{name}");
                let Some(first) = rx.recv().await else {
                    return s3.put(bucket, &key, Bytes::new()).await;
                };
                let Some(second) = rx.recv().await else {
                    return s3.put(bucket, &key, first).await;
                };
                let id = s3.create_multipart(bucket, &key).await?;
                let mut etags = Vec::new();
                let result = async {
                    etags.push(s3.upload_part(bucket, &key, &id, 1, first).await?);
                    etags.push(s3.upload_part(bucket, &key, &id, 2, second).await?);
                    while let Some(part) = rx.recv().await {
                        let n = etags.len() as u32 + 1;
                        etags.push(s3.upload_part(bucket, &key, &id, n, part).await?);
                    }
                    s3.complete_multipart(bucket, &key, &id, &etags).await
                }
                .await;
                if result.is_err() {
                    s3.abort_multipart(bucket, &key, &id).await;
                }
                result
            }
            Store::Http { .. } => unreachable!(),
        }
    }
}

/// GET a small document over HTTP; `None` on 404.
async fn http_get_small(
    http: &reqwest::Client,
    deadline: &Deadline,
    url: reqwest::Url,
) -> Result<Option<Vec<u8>>, Failure> {
    let shown = initbox_runtime::url::display(url.as_str());
    let what = format!("GET {shown}");
    let resp = initbox_aws::http::send(deadline, &what, || http.get(url.clone())).await?;
    match resp.status {
        200..=299 => Ok(Some(resp.body)),
        404 => Ok(None),
        401 | 403 => Err(Failure::credentials(format!(
            "{what}: HTTP {}",
            resp.status
        ))),
        s => Err(Failure::failed(format!("{what}: HTTP {s}"))),
    }
}

/// The file names an index page links to (an nginx/Apache/python autoindex, or a plain list
/// of names, one a line): the last segment of every relative `href`.
pub fn index_names(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    if body.contains("href=") {
        for part in body.split("href=").skip(1) {
            let q = part.chars().next().unwrap_or(' ');
            let inner = if q == '"' || q == '\'' {
                part[1..].split(q).next().unwrap_or_default()
            } else {
                part.split([' ', '>']).next().unwrap_or_default()
            };
            if inner.contains("://") || inner.starts_with('?') || inner.ends_with('/') {
                continue;
            }
            let name = inner.rsplit('/').next().unwrap_or_default();
            let name = percent_decode(name);
            if !name.is_empty() && !out.contains(&name) {
                out.push(name);
            }
        }
    } else {
        out.extend(
            body.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.contains('/'))
                .map(str::to_string),
        );
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A blocking reader over a streamed HTTP body.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
    /// A transport failure stays a failure on every later read (never a short EOF).
    failed: Option<(io::ErrorKind, String)>,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some((kind, msg)) = &self.failed {
            return Err(io::Error::new(*kind, msg.clone()));
        }
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => {
                    self.failed = Some((e.kind(), e.to_string()));
                    return Err(e);
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

fn bridge(resp: reqwest::Response, idle: Duration) -> ChannelReader {
    let (tx, rx) = mpsc::channel(READ_CHANNEL);
    tokio::spawn(async move {
        let mut s = resp.bytes_stream();
        loop {
            let item = match tokio::time::timeout(idle, s.next()).await {
                Ok(Some(Ok(b))) => Ok(b),
                Ok(Some(Err(e))) => Err(io::Error::other(initbox_aws::http::chain(&e))),
                Ok(None) => break,
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the download stalled: no data for {}",
                        humantime::format_duration(idle)
                    ),
                )),
            };
            let end = item.is_err();
            if tx.send(item).await.is_err() || end {
                break;
            }
        }
    });
    ChannelReader {
        rx,
        cur: Bytes::new(),
        failed: None,
    }
}

/// A blocking writer cutting a stream into upload parts sent on a bounded channel.
pub struct PartWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
    part: usize,
}

impl PartWriter {
    /// The writer, and the receiver to give [`Store::upload`] (two parts in flight at most).
    pub fn new(part: usize) -> (PartWriter, mpsc::Receiver<Bytes>) {
        let (tx, rx) = mpsc::channel(1);
        (
            PartWriter {
                tx,
                buf: Vec::with_capacity(part),
                part,
            },
            rx,
        )
    }

    fn send(&mut self) -> io::Result<()> {
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(self.part));
        self.tx
            .blocking_send(Bytes::from(full))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped"))
    }

    /// Send what is left; closes the stream.
    pub fn finish(mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        Ok(())
    }
}

impl Write for PartWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.part - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == self.part {
            self.send()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The file store of a `file://` URL or a plain path.
pub fn file_dir(url: &str) -> PathBuf {
    PathBuf::from(url.strip_prefix("file://").unwrap_or(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_pages() {
        let nginx = r#"<html><body><a href="../">../</a>
<a href="2026-12-01T033000.000Z.manifest.json">2026-12-01T033000.000Z.manifest.json</a>
<a href='x%20y.tar.zst'>x</a><a href="https://elsewhere/x">e</a><a href="sub/">sub/</a></body></html>"#;
        assert_eq!(
            index_names(nginx),
            ["2026-12-01T033000.000Z.manifest.json", "x y.tar.zst"]
        );
        assert_eq!(
            index_names("a.tar.zst\nb.sha256\n"),
            ["a.tar.zst", "b.sha256"]
        );
    }
}
