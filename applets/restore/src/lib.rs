//! `initbox restore --from REPOSITORY --to DIR`: decide what state the data volume is in, and
//! only then act.
//!
//! - **empty** (nothing but `lost+found` and initbox's own `.initbox-*` entries): restore;
//! - **ours and healthy** (initbox's marker is there and `--check` passes): leave it untouched;
//! - **ours and unhealthy** (marker, but `--check` fails): restore, with the old data kept
//!   aside in `DIR/.initbox-failed-<time>/` (never deleted by initbox);
//! - **foreign** (data without the marker): left alone unless `--foreign restore` (or
//!   `--if always`) says otherwise; `--foreign fail` makes it an error.
//!
//! Restoring walks back through the versions, newest first (`--version-id`/`--before` pin
//! one): each is streamed, decompressed and unpacked at once into a staging directory inside
//! DIR (same filesystem), its SHA-256 compared with the manifest (or the published checksum),
//! `--check` run in the staging copy, and the first that passes is swapped in. The swap is a
//! journal (`.initbox-swap.json`) of renames: a kill at any moment is completed by the next
//! run before anything else, so the application never starts on half of each.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use clap::{Parser, ValueEnum};
use initbox_archive::{Chmod, Compression, HashingReader, UnpackOptions};
use initbox_aws::AwsArgs;
use initbox_aws::s3::S3Args;
use initbox_fsutil::swap::{self, Layout, Old, data_entries};
use initbox_repository::{Manifest, Marker, Store};
use initbox_runtime::child;
use initbox_runtime::{Applet, Deadline, Failure, LogArgs, Outcome, duration};
use tracing::{info, warn};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum When {
    /// Only when DIR is empty.
    Empty,
    /// When DIR is empty, or ours and failing --check.
    Unhealthy,
    /// Always (existing data, foreign too, is kept aside).
    Always,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Foreign {
    /// Leave it untouched and succeed (a warning says so).
    Keep,
    /// Leave it untouched and fail (exit 4).
    Fail,
    /// Treat it as unhealthy: keep it aside and restore.
    Restore,
}

#[derive(Debug, Parser)]
#[command(
    name = "restore",
    version,
    about = "Restore a data directory from a backup when it is empty or unhealthy, walking back to the last good version",
    after_help = "Sources: s3://BUCKET/PREFIX/, file:///PATH/, https://HOST/PATH/ (an index of versions) or \
                  https://HOST/PATH/NAME.tar.zst (one archive with NAME.tar.zst.sha256 beside it).\n\n\
                  Examples:\n  \
                  initbox restore --from s3://backups/app/ --to /data --check \"sqlite3 app.db 'PRAGMA integrity_check'\" --check-output ok\n  \
                  initbox restore --from file:///mnt/backups/app/ --to /data --owner 999:999 --chmod D0750,F0640"
)]
pub struct Args {
    /// Repository to restore from: s3://, file:// or http(s)://.
    #[arg(long, value_name = "SOURCE", env = initbox_runtime::env::RESTORE_FROM)]
    pub from: String,

    /// Data directory to restore into (created when missing; may be a mount point).
    #[arg(long, value_name = "DIR", env = initbox_runtime::env::RESTORE_TO)]
    pub to: PathBuf,

    /// When to restore: empty, unhealthy (empty or failing --check), always.
    #[arg(
        long = "if",
        value_name = "WHEN",
        value_enum,
        default_value = "unhealthy",
        env = initbox_runtime::env::RESTORE_IF
    )]
    pub when: When,

    /// What to do with data that has no initbox marker: keep, fail, restore.
    #[arg(
        long,
        value_name = "ACTION",
        value_enum,
        default_value = "keep",
        env = initbox_runtime::env::RESTORE_FOREIGN
    )]
    pub foreign: Foreign,

    /// Health check of the data, run inside the directory (DIR, then each staged version); a shell-like command line, no shell.
    #[arg(long, value_name = "CMD", env = initbox_runtime::env::RESTORE_CHECK)]
    pub check: Option<String>,

    /// The check must also print exactly this (trimmed), e.g. "ok" for SQLite's integrity_check.
    #[arg(
        long,
        value_name = "TEXT",
        env = initbox_runtime::env::RESTORE_CHECK_OUTPUT,
        requires = "check"
    )]
    pub check_output: Option<String>,

    /// Time limit for each check command run (--check).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = duration::parse, env = initbox_runtime::env::RESTORE_CHECK_TIMEOUT)]
    pub check_timeout: Duration,

    /// Restore this version only (its id, as in the log and the manifest names).
    #[arg(
        long,
        value_name = "ID",
        env = initbox_runtime::env::RESTORE_VERSION_ID,
        conflicts_with = "before"
    )]
    pub version_id: Option<String>,

    /// Only versions made before this time (RFC 3339, e.g. 2026-12-01T03:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = parse_time, env = initbox_runtime::env::RESTORE_BEFORE)]
    pub before: Option<SystemTime>,

    /// Owner of every restored file and directory (default: the archive's when root, else the caller).
    #[arg(long, value_name = "UID:GID", value_parser = initbox_runtime::atomic::parse_owner, env = initbox_runtime::env::RESTORE_OWNER)]
    pub owner: Option<(u32, u32)>,

    /// Modes forced while unpacking: octal or chmod's symbolic form, D/F for directories/files only, e.g. D0750,F0640 or u=rwX,go=rX.
    #[arg(long, value_name = "SPEC", value_parser = Chmod::parse, allow_hyphen_values = true, env = initbox_runtime::env::RESTORE_CHMOD)]
    pub chmod: Option<Chmod>,

    /// Succeed, leaving DIR empty, when the repository holds no version yet (a first deployment).
    #[arg(long, env = initbox_runtime::env::RESTORE_ALLOW_NO_BACKUP, value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_no_backup: bool,

    /// Give up after this long (exit 124; 0 = no limit).
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = duration::parse, env = initbox_runtime::env::TIMEOUT)]
    pub timeout: Duration,

    /// A download that receives nothing for this long fails (then the next version is tried).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration::parse, env = initbox_runtime::env::STALL_TIMEOUT)]
    pub stall_timeout: Duration,

    #[command(flatten)]
    pub aws: AwsArgs,

    #[command(flatten)]
    pub s3: S3Args,

    #[command(flatten)]
    pub log: LogArgs,
}

fn parse_time(s: &str) -> Result<SystemTime, String> {
    humantime::parse_rfc3339_weak(s).map_err(|e| format!("'{s}' is not an RFC 3339 time: {e}"))
}

impl Applet for Args {
    fn logging(&self) -> &LogArgs {
        &self.log
    }

    async fn run(self) -> Result<Outcome, Failure> {
        restore(self).await.map(|()| Outcome::OK)
    }
}

/// The state of the data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Empty,
    Healthy(Marker),
    Unhealthy(Marker, String),
    Foreign,
}

/// One version to try.
#[derive(Debug, Clone)]
struct Candidate {
    id: String,
    archive: String,
    compression: Compression,
    sha256: Option<String>,
    size: Option<u64>,
    /// Where the digest comes from.
    digest_from: &'static str,
}

/// restore's lock and swap journal in DIR (see `initbox_fsutil::swap`).
const LAYOUT: Layout = Layout {
    applet: "restore",
    lock: ".initbox-lock",
    journal: ".initbox-swap.json",
    staging_holds: "unpack",
    old_data: "data",
};

/// The outcome of `--check` in `dir`: `Ok(())` passes, `Err(reason)` fails.
async fn run_check(args: &Args, dir: &Path) -> Result<Result<(), String>, Failure> {
    let Some(line) = &args.check else {
        return Ok(Ok(()));
    };
    let cmd = initbox_repository::data_dir_command("--check", line, dir)?;
    let running = cmd.spawn()?;
    let finished = match tokio::time::timeout(args.check_timeout, running.wait()).await {
        Ok(f) => f?,
        Err(_) => {
            return Ok(Err(format!(
                "the check did not finish within {}",
                humantime::format_duration(args.check_timeout)
            )));
        }
    };
    if !finished.success() {
        let why = [finished.stderr.trim(), finished.stdout.trim()]
            .into_iter()
            .find(|s| !s.is_empty())
            .map(|s| format!(": {}", s.lines().last().unwrap_or_default()))
            .unwrap_or_default();
        return Ok(Err(format!(
            "the check {}{why}",
            child::describe(&finished.status)
        )));
    }
    if let Some(want) = &args.check_output
        && finished.stdout.trim() != want.trim()
    {
        return Ok(Err(format!(
            "the check printed '{}', not '{}'",
            initbox_runtime::redact::excerpt(finished.stdout.trim(), 200),
            want.trim()
        )));
    }
    Ok(Ok(()))
}

async fn decide(args: &Args, dir: &Path) -> Result<State, Failure> {
    if data_entries(dir)?.is_empty() {
        return Ok(State::Empty);
    }
    match Marker::read(dir)? {
        None => Ok(State::Foreign),
        Some(m) => match run_check(args, dir).await? {
            Ok(()) => Ok(State::Healthy(m)),
            Err(why) => Ok(State::Unhealthy(m, why)),
        },
    }
}

async fn restore(args: Args) -> Result<(), Failure> {
    let started = Instant::now();
    let deadline = Deadline::after((!args.timeout.is_zero()).then_some(args.timeout));
    let dir = args.to.clone();
    initbox_runtime::atomic::create_dirs(&dir, 0o755, args.owner)?;
    let _lock = LAYOUT.lock(&dir)?;
    // A swap a kill interrupted is finished first: the directory then holds that version.
    LAYOUT.resume(&dir, |m: &Marker| m.write(&dir, args.owner))?;
    LAYOUT.remove_stale_staging(&dir);

    let state = decide(&args, &dir).await?;
    let act = match (&state, args.when) {
        (State::Empty, _) => true,
        (State::Healthy(m), When::Always) => {
            info!(version = %m.version, "restore: the data is healthy, restoring anyway (--if always)");
            true
        }
        (State::Healthy(m), _) => {
            info!(
                dir = %dir.display(),
                version = %m.version,
                by = %m.by,
                at = %m.at,
                checked = args.check.is_some(),
                "restore: the data is ours and healthy; left untouched"
            );
            return Ok(());
        }
        (State::Unhealthy(m, why), When::Empty) => {
            warn!(version = %m.version, reason = %why, "restore: the data fails its check, but --if empty: left untouched");
            return Ok(());
        }
        (State::Unhealthy(m, why), _) => {
            warn!(version = %m.version, reason = %why, "restore: the data fails its check; restoring, the old data is kept aside");
            true
        }
        (State::Foreign, When::Always) => true,
        (State::Foreign, _) => match args.foreign {
            Foreign::Keep => {
                warn!(dir = %dir.display(), "restore: the directory holds data without initbox's marker (foreign); left untouched (--foreign restore to replace it)");
                return Ok(());
            }
            Foreign::Fail => {
                return Err(Failure::env_refused(format!(
                    "{} holds data without initbox's marker (foreign); not overwriting it (--foreign restore replaces it, keeping it aside)",
                    dir.display()
                )));
            }
            Foreign::Restore => true,
        },
    };
    debug_assert!(act);
    let state_name = match &state {
        State::Empty => "empty",
        State::Healthy(_) => "healthy",
        State::Unhealthy(..) => "unhealthy",
        State::Foreign => "foreign",
    };

    let store = initbox_repository::open(&args.from, &args.aws, &args.s3, deadline)?;
    let candidates = candidates(&store, &args).await?;
    if candidates.is_empty() {
        let pinned = args.version_id.is_some() || args.before.is_some();
        if !pinned && args.allow_no_backup && state == State::Empty {
            info!(repository = %store.display(), "restore: the repository has no version yet; DIR stays empty (--allow-no-backup)");
            return Ok(());
        }
        return Err(Failure::failed(format!(
            "{}: no version to restore{}",
            store.display(),
            if pinned {
                " matches --version-id/--before"
            } else {
                ""
            }
        )));
    }
    info!(
        repository = %store.display(),
        state = state_name,
        versions = candidates.len(),
        newest = %candidates[0].id,
        "restore: walking back from the newest version"
    );
    let mut skipped: Vec<String> = Vec::new();
    for c in &candidates {
        if deadline.expired() {
            return Err(Failure::deadline(format!(
                "restore: deadline exceeded before a version passed; skipped: {}",
                skipped.join("; ")
            )));
        }
        match try_version(&args, &store, &dir, c, &deadline).await? {
            Ok(staging) => {
                let aside_name = format!(
                    ".initbox-failed-{}",
                    initbox_repository::version_id(SystemTime::now())
                );
                let old = if matches!(state, State::Empty) {
                    Old::Leave
                } else {
                    Old::Aside(&aside_name)
                };
                let marker = Marker {
                    version: c.id.clone(),
                    sha256: c.sha256.clone().unwrap_or_default(),
                    at: initbox_repository::now_rfc3339(),
                    by: "restore".into(),
                    repository: store.display(),
                };
                let kept = LAYOUT.swap(&dir, &staging, old, Some(marker), |m| {
                    m.write(&dir, args.owner)
                })?;
                if let Some(k) = kept {
                    warn!(kept_aside = %k.display(), "restore: the previous data is kept aside (initbox never deletes it)");
                }
                info!(
                    version = %c.id,
                    skipped = skipped.len(),
                    elapsed = %format!("{:.1}s", started.elapsed().as_secs_f64()),
                    "restore: restored {} into {}{}",
                    c.id,
                    dir.display(),
                    if skipped.is_empty() {
                        String::new()
                    } else {
                        format!(" (newer versions skipped: {})", skipped.join("; "))
                    }
                );
                return Ok(());
            }
            Err(why) => {
                warn!(version = %c.id, reason = %why, "restore: version skipped");
                skipped.push(format!("{}: {why}", c.id));
            }
        }
    }
    Err(Failure::failed(format!(
        "restore: no version passed; {} left as it was; skipped: {}",
        dir.display(),
        skipped.join("; ")
    )))
}

/// The versions to try, newest first.
async fn candidates(store: &Store, args: &Args) -> Result<Vec<Candidate>, Failure> {
    // One archive named by an http(s) URL.
    if let Store::Http { base, .. } = store
        && !base.path().ends_with('/')
    {
        let name = base
            .path_segments()
            .and_then(|mut s| s.next_back())
            .unwrap_or_default()
            .to_string();
        return Ok(vec![Candidate {
            id: name.clone(),
            compression: Compression::from_name(&name).ok_or_else(|| {
                Failure::usage(format!(
                    "{name}: not a .tar.zst, .tar.gz or .tar archive name"
                ))
            })?,
            archive: name,
            sha256: None,
            size: None,
            digest_from: "checksum file",
        }]);
    }
    let names = store.list().await?;
    let ids = initbox_repository::versions(&names);
    let mut out = Vec::new();
    if ids.is_empty() {
        // A published tree without manifests: archives with a checksum file beside each.
        let mut archives: Vec<&String> = names
            .iter()
            .filter(|n| Compression::from_name(n).is_some() && !n.starts_with('.'))
            .collect();
        archives.sort();
        archives.reverse();
        for a in archives {
            out.push(Candidate {
                id: a.clone(),
                archive: a.clone(),
                compression: Compression::from_name(a).unwrap_or(Compression::Zstd),
                sha256: None,
                size: None,
                digest_from: "checksum file",
            });
        }
    }
    for id in ids {
        if args.version_id.as_ref().is_some_and(|v| *v != id) {
            continue;
        }
        if let Some(before) = args.before
            && initbox_repository::id_time(&id).is_none_or(|t| t >= before)
        {
            continue;
        }
        out.push(Candidate {
            id: id.clone(),
            archive: String::new(),
            compression: Compression::Zstd,
            sha256: None,
            size: None,
            digest_from: "manifest",
        });
    }
    Ok(out)
}

/// Download, verify and check one version into a staging directory: `Ok(Ok(staging))` when it
/// passed, `Ok(Err(reason))` when it did not (then nothing of it is left).
async fn try_version(
    args: &Args,
    store: &Store,
    dir: &Path,
    c: &Candidate,
    deadline: &Deadline,
) -> Result<Result<PathBuf, String>, Failure> {
    let mut c = c.clone();
    // The digest: the manifest's, or the published checksum file's.
    if c.digest_from == "manifest" {
        let Some(raw) = store.get_small(&Manifest::name(&c.id)).await? else {
            return Ok(Err("its manifest disappeared".into()));
        };
        let m: Manifest = match serde_json::from_slice(&raw) {
            Ok(m) => m,
            Err(e) => return Ok(Err(format!("unreadable manifest: {e}"))),
        };
        if m.archive.contains('/') || m.archive.starts_with('.') {
            return Ok(Err(format!(
                "the manifest names a bad archive '{}'",
                m.archive
            )));
        }
        c.archive = m.archive.clone();
        c.compression = m.compression();
        c.sha256 = Some(m.sha256.clone());
        c.size = Some(m.size);
    } else {
        let sums = store.get_small(&format!("{}.sha256", c.archive)).await?;
        let Some(sum) = sums.as_deref().and_then(|b| checksum_for(b, &c.archive)) else {
            return Ok(Err(format!(
                "no checksum: {}.sha256 is missing or has no line for it",
                c.archive
            )));
        };
        c.sha256 = Some(sum);
    }
    let Some(reader) = store.reader(&c.archive, args.stall_timeout).await? else {
        return Ok(Err(format!("its archive {} is missing", c.archive)));
    };
    let staging = dir.join(format!("{}{}", swap::STAGING, sanitize(&c.id)));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir(&staging)
        .map_err(|e| Failure::env_refused(format!("cannot create {}: {e}", staging.display())))?;
    info!(version = %c.id, archive = %c.archive, size = c.size.unwrap_or(0), "restore: downloading and unpacking into staging");
    let opts = UnpackOptions {
        owner: args.owner,
        chmod: args.chmod.clone().unwrap_or_default(),
        strip_components: 0,
    };
    let size = c.size;
    let staging2 = staging.clone();
    let compression = c.compression;
    let unpacked = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut last = Instant::now();
        let hashing = HashingReader::new(reader).with_progress(move |n| {
            if last.elapsed() >= Duration::from_secs(5) {
                last = Instant::now();
                progress(n, size, started.elapsed());
            }
        });
        let mut hashing = hashing;
        let result = match initbox_archive::decoder(&mut hashing, compression) {
            Ok(decoded) => initbox_archive::unpack(decoded, &staging2, &opts),
            Err(e) => Err(initbox_archive::Error {
                message: format!("reading the archive: {e}"),
                bad_archive: true,
            }),
        };
        // The digest of what was read, the rest of the stream included (a damaged archive
        // is named by its digest, whatever the decompressor made of it).
        let digest = hashing.finish();
        (result, digest)
    })
    .await
    .map_err(|e| Failure::failed(format!("restore: the unpacker stopped: {e}")))?;
    let discard = |why: String| {
        let _ = std::fs::remove_dir_all(&staging);
        Ok(Err(why))
    };
    let (unpacked, digest) = unpacked;
    let want = c.sha256.clone().unwrap_or_default();
    let bytes = match digest {
        Ok((got, _)) if !got.eq_ignore_ascii_case(&want) => {
            return discard(format!(
                "SHA-256 {} does not match the {} ({}): the archive is damaged or not the one recorded",
                &got[..12.min(got.len())],
                c.digest_from,
                &want[..12.min(want.len())]
            ));
        }
        Ok((_, bytes)) => bytes,
        Err(e) => return discard(format!("reading the archive: {e}")),
    };
    let stats = match unpacked {
        Ok(s) => s,
        Err(e) if e.bad_archive => return discard(format!("corrupt or refused archive: {e}")),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(Failure::env_refused(format!("restore: {e}")));
        }
    };
    if deadline.expired() {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(Failure::deadline(
            "restore: deadline exceeded while unpacking",
        ));
    }
    initbox_archive::sync_tree(&staging)
        .map_err(|e| Failure::env_refused(format!("cannot sync {}: {e}", staging.display())))?;
    info!(version = %c.id, entries = stats.entries, bytes = stats.bytes, archive_bytes = bytes, "restore: archive verified (SHA-256 matches the {})", c.digest_from);
    match run_check(args, &staging).await? {
        Ok(()) => Ok(Ok(staging)),
        Err(why) => discard(format!("restored copy fails --check: {why}")),
    }
}

fn progress(n: u64, size: Option<u64>, elapsed: Duration) {
    let rate = n as f64 / elapsed.as_secs_f64().max(0.001);
    let mib = |b: f64| b / (1024.0 * 1024.0);
    match size.filter(|s| *s > 0) {
        Some(s) => {
            let eta = (s.saturating_sub(n)) as f64 / rate.max(1.0);
            info!(
                "restore: {:.1} of {:.1} MiB ({:.0}%), {:.1} MiB/s, ETA {:.0}s",
                mib(n as f64),
                mib(s as f64),
                n as f64 * 100.0 / s as f64,
                mib(rate),
                eta
            );
        }
        None => info!("restore: {:.1} MiB, {:.1} MiB/s", mib(n as f64), mib(rate)),
    }
}

/// The digest for `name` in a sha256sum-format file (`HEX  NAME` or `HEX *NAME`, or one bare
/// digest).
fn checksum_for(body: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let is_hex = |h: &str| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    for l in &lines {
        let mut parts = l.splitn(2, char::is_whitespace);
        let (h, rest) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let file = rest.trim_start().trim_start_matches('*');
        if is_hex(h) && (file == name || file.rsplit('/').next() == Some(name)) {
            return Some(h.to_ascii_lowercase());
        }
    }
    match lines.as_slice() {
        [one] if is_hex(one) => Some(one.to_ascii_lowercase()),
        _ => None,
    }
}

fn sanitize(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_files() {
        let h = "a".repeat(64);
        assert_eq!(
            checksum_for(format!("{h}  data.tar.zst\n").as_bytes(), "data.tar.zst"),
            Some(h.clone())
        );
        assert_eq!(
            checksum_for(
                format!("{h} *dist/data.tar.zst\n").as_bytes(),
                "data.tar.zst"
            ),
            Some(h.clone())
        );
        assert_eq!(checksum_for(h.as_bytes(), "x"), Some(h.clone()));
        assert_eq!(
            checksum_for(format!("{h}  other\n").as_bytes(), "data.tar.zst"),
            None
        );
    }
}
