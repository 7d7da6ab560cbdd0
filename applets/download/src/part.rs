//! The partial file a download is streamed into: `.initbox-download-KEY.part` beside the
//! destination (KEY: the expected digest's start), hashed as it is written. It survives a
//! failed or killed run, so the next run hashes what is already there and asks only for the
//! rest; it is removed when its content does not verify.
//!
//! Writing and hashing run on a thread of their own, fed chunks through a small bounded channel,
//! so the network, the hash and the disk overlap (as `curl | sha256sum` runs in two processes).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use sha2::Digest as _;
use tokio::sync::mpsc;

/// A detached minisign signature and the public key it must verify with.
pub struct Signed {
    pub key: minisign_verify::PublicKey,
    pub signature: minisign_verify::Signature,
}

/// The partial file and its running digests.
struct Part {
    path: PathBuf,
    file: File,
    len: u64,
    sha256: sha2::Sha256,
    minisign: Option<minisign_verify::StreamVerifier<'static>>,
    signed: Option<&'static Signed>,
}

impl Part {
    fn open(path: &Path, signed: Option<&'static Signed>) -> io::Result<Part> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        let mut part = Part {
            path: path.to_path_buf(),
            file: file.try_clone()?,
            len: 0,
            sha256: sha2::Sha256::new(),
            minisign: None,
            signed,
        };
        part.reset_digests();
        // What an earlier run left: hashed again, so the digest covers the whole file.
        let mut buf = vec![0u8; 1024 * 1024];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            part.hash(&buf[..n]);
        }
        part.file.seek(SeekFrom::End(0))?;
        Ok(part)
    }

    fn reset_digests(&mut self) {
        self.sha256 = sha2::Sha256::new();
        self.minisign = self
            .signed
            .and_then(|s| s.key.verify_stream(&s.signature).ok());
        self.len = 0;
    }

    fn hash(&mut self, b: &[u8]) {
        self.sha256.update(b);
        if let Some(v) = &mut self.minisign {
            v.update(b);
        }
        self.len += b.len() as u64;
    }

    fn write(&mut self, b: &[u8]) -> io::Result<()> {
        self.file.write_all(b)?;
        self.hash(b);
        Ok(())
    }

    fn restart(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.reset_digests();
        Ok(())
    }
}

/// What the partial file holds when the writer is done.
pub struct Written {
    pub path: PathBuf,
    pub file: File,
    pub len: u64,
    pub sha256: String,
    /// The signature's verdict, when one was given.
    pub signature: Option<Result<(), String>>,
}

enum Msg {
    /// Chunks as they came from the network, written in order.
    Data(Vec<Bytes>),
    /// Start again from byte 0 (the server sent the whole object instead of the rest).
    Restart,
}

/// The writer thread's handle.
pub struct Writer {
    tx: Option<mpsc::Sender<Msg>>,
    thread: Option<std::thread::JoinHandle<io::Result<Written>>>,
    /// Bytes in the file once every chunk sent so far is written.
    pub len: u64,
    /// Bytes the file held when it was opened (an earlier run's).
    pub found: u64,
}

impl Writer {
    /// Open (or create) the partial file at `path` and hash what it holds: run it off the
    /// async thread, it reads the whole partial file.
    pub fn start(path: &Path, signed: Option<&'static Signed>) -> io::Result<Writer> {
        let mut part = Part::open(path, signed)?;
        let found = part.len;
        let (tx, mut rx) = mpsc::channel::<Msg>(16);
        let thread = std::thread::Builder::new()
            .name("download-writer".into())
            .spawn(move || {
                while let Some(m) = rx.blocking_recv() {
                    match m {
                        Msg::Data(chunks) => {
                            for b in chunks {
                                part.write(&b)?;
                            }
                        }
                        Msg::Restart => part.restart()?,
                    }
                }
                part.file.flush()?;
                let sha256 = hex::encode(std::mem::take(&mut part.sha256).finalize());
                let signature = part.minisign.take().map(|mut v| {
                    v.finalize()
                        .map_err(|e| format!("the minisign signature does not verify: {e}"))
                });
                let signature = match (part.signed, signature) {
                    (Some(_), None) => Some(Err(
                        "the minisign signature is in the legacy (not prehashed) form, which is not supported"
                            .into(),
                    )),
                    (_, s) => s,
                };
                Ok(Written {
                    path: part.path,
                    file: part.file,
                    len: part.len,
                    sha256,
                    signature,
                })
            })?;
        Ok(Writer {
            tx: Some(tx),
            thread: Some(thread),
            len: found,
            found,
        })
    }

    /// Queue chunks; an error means the writer stopped (its error comes from [`finish`]).
    pub async fn write(&mut self, chunks: Vec<Bytes>) -> Result<(), ()> {
        self.len += chunks.iter().map(|b| b.len() as u64).sum::<u64>();
        self.send(Msg::Data(chunks)).await
    }

    /// Truncate the file and start again from 0.
    pub async fn restart(&mut self) -> Result<(), ()> {
        self.len = 0;
        self.send(Msg::Restart).await
    }

    async fn send(&mut self, m: Msg) -> Result<(), ()> {
        match &self.tx {
            Some(tx) => tx.send(m).await.map_err(|_| ()),
            None => Err(()),
        }
    }

    /// Wait for every queued chunk to be written; the digests of the whole file.
    pub async fn finish(mut self) -> io::Result<Written> {
        drop(self.tx.take());
        let thread = self.thread.take().expect("finish once");
        tokio::task::spawn_blocking(move || {
            thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the writer thread panicked")))
        })
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e.to_string())))
    }
}
