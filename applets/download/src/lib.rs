//! `initbox download URL --to PATH --sha256 HEX`: fetch a file into a volume, verified before it
//! is installed.
//!
//! - Sources: `http(s)://` (the runtime's client: TLS verified, `--ca-file`, the redirect
//!   policy), `s3://BUCKET/KEY` (crates/aws, the client restore and backup use), `file:///PATH`.
//! - Verification is required: `--sha256` (or `sha256:HEX`), a published checksums file
//!   (`--sha256sums`, in `sha256sum` output form), or a minisign signature (`--minisign-key`,
//!   the signature at `URL.minisig` unless `--signature` names it). A download that does not
//!   verify is removed: exit 1, nothing installed, nothing kept.
//! - The bytes go to `.initbox-download-KEY.part` beside the destination, hashed as they are
//!   written ([`part`]); a connection cut mid-way is resumed with `Range` within the run
//!   (`--retries` times in a row without progress), and a run that was killed leaves the partial
//!   file for the next run to resume.
//! - Installed atomically: fsync, mode and owner, rename over PATH, fsync of the directory. A
//!   PATH that already holds the expected content is left alone (a restarted pod re-downloads
//!   nothing).
//! - `--unpack` unpacks the verified archive into the directory PATH instead ([`unpack`]);
//!   `--strip-components N` drops the first N components of each entry's path, as GNU tar does.
//! - `--header` (the toolkit's one header flag, `@PATH` values from files) reaches private
//!   https sources: sent to the URL's origin only, never over plain http, never logged.

mod checksums;
mod part;
mod source;
mod unpack;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use initbox_archive::{Chmod, UnpackOptions};
use initbox_aws::AwsArgs;
use initbox_aws::s3::S3Args;
use initbox_runtime::tls::TlsArgs;
use initbox_runtime::{Applet, Deadline, Failure, LogArgs, Outcome, duration};
use tracing::{info, warn};

use part::{Signed, Writer, Written};
use source::{Clients, OpenError, Source};
pub use unpack::Format;

#[derive(Debug, Parser)]
#[command(
    name = "download",
    version,
    about = "Download a file into a volume, verified by its checksum or signature, resumable, installed atomically, optionally unpacked",
    after_help = "Sources: https://HOST/PATH, http://…, s3://BUCKET/KEY, file:///PATH.\n\n\
                  Examples:\n  \
                  initbox download https://example.com/model.bin --to /models/model.bin --sha256 sha256:9f86d0…\n  \
                  initbox download https://example.com/app-1.2.tar.gz --sha256sums https://example.com/SHA256SUMS --to /opt/app --unpack\n  \
                  initbox download s3://artifacts/data.zip --sha256 … --to /data --unpack --owner 65532:65532\n\n\
                  --header is sent over https only and to the URL's origin only: a redirect to another origin is \
                  followed without it, as curl does. Its values are never logged."
)]
pub struct Args {
    /// What to download: http(s)://, s3://BUCKET/KEY or file:///PATH.
    #[arg(value_name = "URL", env = "INITBOX_DOWNLOAD_URL")]
    pub url: String,

    /// Destination file (with --unpack: the directory to unpack into); parents are created.
    #[arg(long, value_name = "PATH", env = "INITBOX_DOWNLOAD_TO")]
    pub to: PathBuf,

    /// Expected SHA-256 of the file: 64 hex digits, or sha256:HEX.
    #[arg(long, value_name = "DIGEST", value_parser = checksums::parse_sha256, env = "INITBOX_DOWNLOAD_SHA256")]
    pub sha256: Option<String>,

    /// A checksums file in sha256sum's output form (URL or path), holding the line for the file's name.
    #[arg(
        long,
        value_name = "SOURCE",
        env = "INITBOX_DOWNLOAD_SHA256SUMS",
        conflicts_with = "sha256"
    )]
    pub sha256sums: Option<String>,

    /// Minisign public key (the base64 key, or a minisign.pub file) the download's signature must verify with.
    #[arg(long, value_name = "KEY", env = "INITBOX_DOWNLOAD_MINISIGN_KEY")]
    pub minisign_key: Option<String>,

    /// The detached minisign signature (URL or path; default: the download's URL with .minisig appended).
    #[arg(
        long,
        value_name = "SOURCE",
        env = "INITBOX_DOWNLOAD_SIGNATURE",
        requires = "minisign_key"
    )]
    pub signature: Option<String>,

    /// Unpack the archive into --to (a directory): auto (by its first bytes, then its name), tar, tar.gz, tar.zst, zip.
    #[arg(
        long,
        value_name = "FORMAT",
        value_enum,
        num_args = 0..=1,
        default_missing_value = "auto",
        env = "INITBOX_DOWNLOAD_UNPACK"
    )]
    pub unpack: Option<Format>,

    /// Mode of the downloaded file.
    #[arg(long, value_name = "MODE", default_value = "0644", value_parser = initbox_runtime::atomic::parse_mode, env = "INITBOX_DOWNLOAD_MODE")]
    pub mode: u32,

    /// Owner of the downloaded file, or of every unpacked entry (needs root or CAP_CHOWN).
    #[arg(long, value_name = "UID:GID", value_parser = initbox_runtime::atomic::parse_owner, env = "INITBOX_DOWNLOAD_OWNER")]
    pub owner: Option<(u32, u32)>,

    /// With --unpack: modes forced on the unpacked entries: octal or chmod's symbolic form, D/F for directories/files only, e.g. D0750,F0640 or u=rwX,go=rX.
    #[arg(long, value_name = "SPEC", value_parser = Chmod::parse, allow_hyphen_values = true, env = "INITBOX_DOWNLOAD_CHMOD", requires = "unpack")]
    pub chmod: Option<Chmod>,

    /// With --unpack: drop the first N components of every entry's path, as GNU tar does; entries with no more are skipped.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        env = initbox_runtime::env::DOWNLOAD_STRIP_COMPONENTS,
        requires = "unpack"
    )]
    pub strip_components: usize,

    // `--header`: sent over https only, to the URL's origin only (not after a redirect to
    // another), never logged (after_help says so).
    #[command(flatten)]
    pub headers: initbox_runtime::http::HeaderArgs,

    /// Resumed attempts after a failure that received nothing new (a cut connection, a 5xx).
    #[arg(
        long,
        value_name = "N",
        default_value = "5",
        env = "INITBOX_DOWNLOAD_RETRIES"
    )]
    pub retries: u32,

    /// Give up after this long (exit 124; 0 = no limit).
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = duration::parse, env = initbox_runtime::env::TIMEOUT)]
    pub timeout: Duration,

    /// A download that receives nothing for this long fails (then it resumes, within --retries).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration::parse, env = initbox_runtime::env::STALL_TIMEOUT)]
    pub stall_timeout: Duration,

    #[command(flatten)]
    pub tls: TlsArgs,

    #[command(flatten)]
    pub aws: AwsArgs,

    #[command(flatten)]
    pub s3: S3Args,

    #[command(flatten)]
    pub log: LogArgs,
}

impl Applet for Args {
    fn logging(&self) -> &LogArgs {
        &self.log
    }

    async fn run(self) -> Result<Outcome, Failure> {
        download(self).await.map(|()| Outcome::OK)
    }
}

/// How often a progress line is logged during a transfer.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// Bytes of network chunks handed to the writer thread at once.
const BATCH: usize = 256 * 1024;
/// Largest checksums or signature file read.
const SMALL_LIMIT: usize = 1024 * 1024;

/// The shared clients for the sources named on the command line.
fn clients(args: &Args, deadline: Deadline) -> Result<Clients, Failure> {
    let urls = [
        Some(&args.url),
        args.sha256sums.as_ref(),
        args.signature.as_ref(),
    ];
    let any = |p: &str| urls.iter().flatten().any(|u| u.starts_with(p));
    let url_password = urls
        .iter()
        .flatten()
        .any(|u| reqwest::Url::parse(u).is_ok_and(|u| u.password().is_some()));
    let headers = args.headers.parse()?;
    let auth = if headers.is_empty() {
        None
    } else {
        let origin = reqwest::Url::parse(&args.url)
            .ok()
            .filter(|u| u.scheme() == "https")
            .map(|u| u.origin().ascii_serialization())
            .ok_or_else(|| {
                Failure::usage(format!(
                    "{}: --header is sent over https only; give an https:// URL",
                    initbox_runtime::url::display(&args.url)
                ))
            })?;
        Some(Arc::new(source::Auth {
            origin,
            headers,
            url_password,
        }))
    };
    let http = if any("http://") || any("https://") {
        let tls = initbox_runtime::tls::client_config(&args.tls)?;
        let mut opts = initbox_runtime::http::ClientOptions::new(
            tls,
            concat!("initbox/", env!("CARGO_PKG_VERSION")),
            // A whole download: bounded by --timeout and --stall-timeout, not per request.
            Duration::from_secs(7 * 24 * 3600),
        );
        opts.connect_timeout = Duration::from_secs(10);
        // A password in the URL keeps redirects on its origin.
        opts.credentials = url_password;
        if auth.is_some() {
            // Followed by the source itself, sending the headers to their origin only.
            opts.redirects = initbox_runtime::http::Redirects::Never;
        }
        Some(initbox_runtime::http::client(opts)?)
    } else {
        None
    };
    let s3 = if any("s3://") {
        let aws = initbox_aws::Aws::new(&args.aws, initbox_aws::s3::REQUEST_TIMEOUT, deadline)?;
        Some(Arc::new(initbox_aws::s3::S3::new(Arc::new(aws), &args.s3)?))
    } else {
        None
    };
    Ok(Clients { http, s3, auth })
}

/// A checksums or signature source: a URL, or a plain path.
fn side_source(s: &str, clients: &Clients) -> Result<Source, Failure> {
    if s.starts_with('/') {
        Source::parse(&format!("file://{s}"), clients)
    } else if !s.contains("://") {
        let abs = std::env::current_dir()
            .map_err(|e| Failure::env_refused(format!("no working directory: {e}")))?
            .join(s);
        Source::parse(&format!("file://{}", abs.display()), clients)
    } else {
        Source::parse(s, clients)
    }
}

/// The minisign key: a minisign.pub file, or the base64 key itself.
fn public_key(s: &str) -> Result<minisign_verify::PublicKey, Failure> {
    let text = match std::fs::read_to_string(s) {
        Ok(t) => t,
        Err(_) if !s.contains('/') => s.to_string(),
        Err(e) => {
            return Err(Failure::invalid_input(format!(
                "--minisign-key {s}: cannot read it: {e}"
            )));
        }
    };
    let key_line = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
        .unwrap_or_default();
    minisign_verify::PublicKey::from_base64(key_line).map_err(|e| {
        Failure::invalid_input(format!("--minisign-key: not a minisign public key: {e}"))
    })
}

/// What the download must match.
struct Expected {
    sha256: Option<String>,
    signed: Option<&'static Signed>,
    /// Where the digest comes from, for messages.
    from: String,
}

async fn expected(
    args: &Args,
    source: &Source,
    clients: &Clients,
    deadline: &Deadline,
) -> Result<Expected, Failure> {
    let name = source.file_name();
    let (sha256, mut from) = match (&args.sha256, &args.sha256sums) {
        (Some(h), _) => (Some(h.clone()), "--sha256".to_string()),
        (None, Some(c)) => {
            let sums = side_source(c, clients)?;
            let body = sums.read_small(SMALL_LIMIT, deadline).await?;
            let digest = checksums::find(&body, &name).map_err(|why| {
                Failure::invalid_input(format!("checksums file {}: {why}", sums.display()))
            })?;
            (Some(digest), sums.display())
        }
        (None, None) => (None, String::new()),
    };
    let signed = match &args.minisign_key {
        None => None,
        Some(k) => {
            let key = public_key(k)?;
            let sig_source = match &args.signature {
                Some(s) => side_source(s, clients)?,
                None => source.beside(".minisig"),
            };
            let body = sig_source.read_small(SMALL_LIMIT, deadline).await?;
            let text = String::from_utf8_lossy(&body);
            let signature = minisign_verify::Signature::decode(&text).map_err(|e| {
                Failure::invalid_input(format!(
                    "{}: not a minisign signature: {e}",
                    sig_source.display()
                ))
            })?;
            if !from.is_empty() {
                from.push_str(" and ");
            }
            from.push_str(&format!("the signature {}", sig_source.display()));
            // Lives as long as the process: the writer's verifier borrows it.
            Some(&*Box::leak(Box::new(Signed { key, signature })))
        }
    };
    Ok(Expected {
        sha256,
        signed,
        from,
    })
}

async fn download(mut args: Args) -> Result<(), Failure> {
    let started = Instant::now();
    let deadline = Deadline::after((!args.timeout.is_zero()).then_some(args.timeout));
    if args.sha256.is_none() && args.sha256sums.is_none() && args.minisign_key.is_none() {
        return Err(Failure::usage(
            "a checksum is required: --sha256, --sha256sums or --minisign-key",
        ));
    }
    let clients = clients(&args, deadline)?;
    let source = Source::parse(&args.url, &clients)?;
    let shown = source.display();
    let name = source.file_name();
    // A directory (or a path ending in '/') receives the file under its own name, as with
    // `curl -O` and `wget -P`.
    if args.unpack.is_none()
        && (args.to.as_os_str().to_string_lossy().ends_with('/') || args.to.is_dir())
    {
        if name.is_empty() || name == "." || name == ".." {
            return Err(Failure::usage(format!(
                "{shown} names no file: give --to the file's path"
            )));
        }
        args.to = args.to.join(&name);
    }
    let want = expected(&args, &source, &clients, &deadline).await?;

    // Where the partial file lives: beside the file, or inside the directory to unpack into.
    let work_dir = match args.unpack {
        Some(_) => args.to.clone(),
        None => match args.to.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        },
    };
    initbox_runtime::atomic::create_dirs(&work_dir, 0o755, args.owner)?;

    if already_there(&args, &want).await? {
        info!(
            source = %shown,
            to = %args.to.display(),
            "download: {} already holds the verified content; nothing to do",
            args.to.display()
        );
        return Ok(());
    }

    let key = match &want.sha256 {
        Some(h) => h[..16].to_string(),
        None => {
            use sha2::Digest as _;
            hex::encode(&sha2::Sha256::digest(args.url.as_bytes())[..8])
        }
    };
    let part_path = work_dir.join(format!(".initbox-download-{key}.part"));

    // A resumed partial file that does not verify is started over once: the source may have
    // changed between the runs.
    let mut fresh_tried = false;
    let written = loop {
        let w = fetch(&args, &source, &part_path, &want, &deadline).await?;
        match verdict(&w, &want) {
            Ok(()) => break w,
            Err(why) => {
                let _ = std::fs::remove_file(&part_path);
                if w.resumed && !fresh_tried {
                    warn!(source = %shown, reason = %why, "download: the resumed file does not verify; starting over");
                    fresh_tried = true;
                    continue;
                }
                return Err(Failure::failed(format!(
                    "{shown}: {why}; the download was removed, nothing installed"
                )));
            }
        }
    };
    let Fetched {
        written, bytes_got, ..
    } = written;
    info!(
        source = %shown,
        sha256 = %written.sha256,
        bytes = written.len,
        "download: verified against {}",
        want.from
    );

    match args.unpack {
        None => {
            install_file(&args, &written)?;
            info!(
                source = %shown,
                to = %args.to.display(),
                bytes = written.len,
                received = bytes_got,
                elapsed = %format!("{:.1}s", started.elapsed().as_secs_f64()),
                "download: installed {}",
                args.to.display()
            );
        }
        Some(format) => {
            let path = written.path.clone();
            drop(written.file);
            let format = unpack::detect(&path, &name, format)?;
            let opts = UnpackOptions {
                owner: args.owner,
                chmod: args.chmod.unwrap_or_default(),
                strip_components: args.strip_components,
            };
            let marker = unpack::Marker {
                sha256: written.sha256.clone(),
                source: shown.clone(),
                at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
                entries: Vec::new(),
            };
            let dir = args.to.clone();
            let result = tokio::task::spawn_blocking(move || {
                unpack::install(&path, format, &dir, &opts, marker)
            })
            .await
            .map_err(|e| Failure::failed(format!("the unpacker stopped: {e}")))?;
            let _ = std::fs::remove_file(&part_path);
            let stats = result.map_err(|f| f.context(&shown))?;
            info!(
                source = %shown,
                to = %args.to.display(),
                format = ?format,
                entries = stats.entries,
                bytes = stats.bytes,
                elapsed = %format!("{:.1}s", started.elapsed().as_secs_f64()),
                "download: unpacked into {}",
                args.to.display()
            );
        }
    }
    Ok(())
}

/// Whether the destination already holds the expected content (a restarted pod).
async fn already_there(args: &Args, want: &Expected) -> Result<bool, Failure> {
    if args.unpack.is_some() {
        let marker = unpack::Marker::read(&args.to);
        return Ok(match (marker, &want.sha256) {
            (Some(m), Some(h)) => {
                m.sha256 == *h
                    && m.entries
                        .iter()
                        .all(|e| args.to.join(e).symlink_metadata().is_ok())
            }
            _ => false,
        });
    }
    let Some(h) = &want.sha256 else {
        // A signature alone: the file is downloaded again (the signature names no digest).
        return Ok(false);
    };
    match std::fs::symlink_metadata(&args.to) {
        Ok(m) if m.is_file() => {}
        _ => return Ok(false),
    }
    let path = args.to.clone();
    let got = tokio::task::spawn_blocking(move || initbox_archive::sha256_file(&path))
        .await
        .map_err(|e| Failure::failed(e.to_string()))?;
    Ok(got.is_ok_and(|g| g == *h))
}

fn verdict(w: &Fetched, want: &Expected) -> Result<(), String> {
    if let Some(h) = &want.sha256
        && w.written.sha256 != *h
    {
        return Err(format!(
            "SHA-256 {} does not match {} (expected {h})",
            w.written.sha256, want.from
        ));
    }
    if let Some(Err(why)) = &w.written.signature {
        return Err(why.clone());
    }
    Ok(())
}

/// A finished transfer.
struct Fetched {
    written: Written,
    /// An earlier run's partial file was continued.
    resumed: bool,
    /// Bytes received in this run.
    bytes_got: u64,
}

/// Transfer the source into the partial file, resuming after cuts; the file's digests.
async fn fetch(
    args: &Args,
    source: &Source,
    part_path: &Path,
    want: &Expected,
    deadline: &Deadline,
) -> Result<Fetched, Failure> {
    let shown = source.display();
    let path = part_path.to_path_buf();
    let signed = want.signed;
    let mut writer = tokio::task::spawn_blocking(move || Writer::start(&path, signed))
        .await
        .map_err(|e| Failure::failed(e.to_string()))?
        .map_err(|e| unpack::io_failure("cannot write", part_path, e))?;
    let resumed = writer.found > 0;
    if resumed {
        info!(source = %shown, bytes = writer.found, "download: resuming a partial download");
    }
    let policy = initbox_runtime::retry::RetryPolicy {
        max_attempts: None,
        ..initbox_runtime::retry::RetryPolicy::REQUESTS
    };
    let mut delays = policy.delays();
    let mut failures_in_a_row = 0u32;
    let mut bytes_got = 0u64;
    let mut last_progress = Instant::now();
    let transfer_started = Instant::now();
    loop {
        if deadline.expired() {
            return Err(kept_deadline(&shown, writer.len));
        }
        let before = writer.len;
        let step = attempt(
            args,
            source,
            &mut writer,
            deadline,
            &mut bytes_got,
            &mut last_progress,
            transfer_started,
        )
        .await;
        match step {
            Step::Done => break,
            Step::Restarted => continue,
            Step::Short(total) => {
                failures_in_a_row = 0;
                warn!(source = %shown, got = writer.len, size = total, "download: the transfer ended early; resuming");
            }
            Step::Deadline => return Err(kept_deadline(&shown, writer.len)),
            Step::Fatal(f) => {
                let _ = writer.finish().await;
                return Err(f);
            }
            // The writer's own error comes from finish() below.
            Step::WriterStopped => break,
            Step::Transient(e) => {
                if writer.len > before {
                    failures_in_a_row = 0;
                }
                failures_in_a_row += 1;
                if failures_in_a_row > args.retries {
                    let _ = writer.finish().await;
                    let kept = std::fs::metadata(part_path).map(|m| m.len()).unwrap_or(0);
                    let kept = if kept == 0 {
                        let _ = std::fs::remove_file(part_path);
                        String::new()
                    } else {
                        format!("; the {kept} bytes received are kept for the next run")
                    };
                    return Err(Failure::failed(format!(
                        "{shown}: {e} ({failures_in_a_row} attempts without progress{kept})"
                    )));
                }
                let delay = deadline.cap(delays.next().unwrap_or(Duration::from_secs(5)));
                let delay = Duration::from_millis(delay.as_millis() as u64);
                let retry_in = humantime::format_duration(delay);
                if writer.len > 0 {
                    warn!(source = %shown, reason = %e, got = writer.len, %retry_in, "download: interrupted; resuming");
                } else {
                    warn!(source = %shown, reason = %e, %retry_in, "download: failed; trying again");
                }
                tokio::time::sleep(delay).await;
            }
        }
    }
    let written = writer
        .finish()
        .await
        .map_err(|e| unpack::io_failure("cannot write", part_path, e))?;
    Ok(Fetched {
        written,
        resumed,
        bytes_got,
    })
}

/// How one attempt of a transfer ended.
enum Step {
    /// The whole object arrived.
    Done,
    /// The source would not resume: the file was truncated, try again from 0.
    Restarted,
    /// The answer ended before the object's size.
    Short(u64),
    Transient(String),
    Fatal(Failure),
    Deadline,
    WriterStopped,
}

/// One request: open the source where the file ends, stream what it sends into the writer.
async fn attempt(
    args: &Args,
    source: &Source,
    writer: &mut Writer,
    deadline: &Deadline,
    bytes_got: &mut u64,
    last_progress: &mut Instant,
    transfer_started: Instant,
) -> Step {
    let shown = source.display();
    let offset = writer.len;
    let mut body = match source.open(offset, deadline).await {
        Ok(b) => b,
        Err(OpenError::Transient(e)) => return Step::Transient(e),
        Err(OpenError::Fatal(f)) => return Step::Fatal(f),
        Err(OpenError::RangeRefused) => {
            warn!(source = %shown, offset, "download: the source refused to resume; starting over");
            return match writer.restart().await {
                Ok(()) => Step::Restarted,
                Err(()) => Step::WriterStopped,
            };
        }
    };
    if body.from != offset {
        info!(source = %shown, "download: the source sent the whole file; starting over");
        if writer.restart().await.is_err() {
            return Step::WriterStopped;
        }
    }
    let total = body.total;
    // Network chunks are small (often 16 KiB): they go to the writer in batches.
    let mut batch: Vec<Bytes> = Vec::new();
    let mut batched = 0usize;
    let end = loop {
        let next = tokio::select! {
            n = body.next(args.stall_timeout) => n,
            () = sleep_until(deadline) => break Some(Step::Deadline),
        };
        match next {
            Ok(Some(chunk)) => {
                *bytes_got += chunk.len() as u64;
                batched += chunk.len();
                batch.push(chunk);
                if batched >= BATCH {
                    batched = 0;
                    if writer.write(std::mem::take(&mut batch)).await.is_err() {
                        return Step::WriterStopped;
                    }
                }
                if last_progress.elapsed() >= PROGRESS_EVERY {
                    *last_progress = Instant::now();
                    progress(
                        &shown,
                        writer.len,
                        total,
                        *bytes_got,
                        transfer_started.elapsed(),
                    );
                }
            }
            Ok(None) => break None,
            Err(e) => break Some(Step::Transient(e)),
        }
    };
    // What arrived before a failure is kept: the next attempt resumes after it.
    if !batch.is_empty() && writer.write(batch).await.is_err() {
        return Step::WriterStopped;
    }
    if let Some(step) = end {
        return step;
    }
    match total {
        Some(t) if writer.len < t => Step::Short(t),
        _ => Step::Done,
    }
}

fn kept_deadline(shown: &str, len: u64) -> Failure {
    Failure::deadline(format!(
        "{shown}: deadline exceeded after {len} bytes (the partial download is kept for the next run)"
    ))
}

async fn sleep_until(deadline: &Deadline) {
    match deadline.remaining() {
        Some(left) => tokio::time::sleep(left).await,
        None => std::future::pending().await,
    }
}

/// fsync, mode, owner, rename over the destination, fsync of the directory.
fn install_file(args: &Args, w: &Written) -> Result<(), Failure> {
    use std::os::unix::fs::PermissionsExt;
    let f = &w.file;
    let fail = |what: &str, e: std::io::Error| unpack::io_failure(what, &w.path, e);
    f.sync_all().map_err(|e| fail("cannot sync", e))?;
    if let Some((u, g)) = args.owner {
        std::os::unix::fs::fchown(f, Some(u), Some(g))
            .map_err(|e| fail("cannot change the owner of", e))?;
    }
    f.set_permissions(std::fs::Permissions::from_mode(args.mode))
        .map_err(|e| fail("cannot change the mode of", e))?;
    if std::fs::symlink_metadata(&args.to).is_ok_and(|m| m.is_dir()) {
        let _ = std::fs::remove_file(&w.path);
        return Err(Failure::invalid_input(format!(
            "--to {} is a directory (name the file, or use --unpack)",
            args.to.display()
        )));
    }
    std::fs::rename(&w.path, &args.to)
        .map_err(|e| unpack::io_failure("cannot install", &args.to, e))?;
    if let Some(dir) = args.to.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

fn progress(shown: &str, have: u64, total: Option<u64>, got: u64, elapsed: Duration) {
    let rate = got as f64 / elapsed.as_secs_f64().max(0.001);
    let mib = |b: f64| b / (1024.0 * 1024.0);
    match total.filter(|t| *t > 0) {
        Some(t) => info!(
            source = %shown,
            "download: {:.1} of {:.1} MiB ({:.0}%), {:.1} MiB/s, ETA {:.0}s",
            mib(have as f64),
            mib(t as f64),
            have as f64 * 100.0 / t as f64,
            mib(rate),
            t.saturating_sub(have) as f64 / rate.max(1.0)
        ),
        None => {
            info!(source = %shown, "download: {:.1} MiB, {:.1} MiB/s", mib(have as f64), mib(rate))
        }
    }
}
