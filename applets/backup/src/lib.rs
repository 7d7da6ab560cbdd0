//! `initbox backup --from DIR --to REPOSITORY`: one backup per run (scheduling is `schedule`'s
//! job: `initbox schedule --at 03:30 -- initbox backup …`).
//!
//! 1. take the repository's lease (a second backup fails at once, naming the holder; a holder
//!    that died loses the lease when it expires), renewed while the backup runs;
//! 2. run `--pre` in DIR (a consistent copy: `sqlite3 app.db '.backup snap.db'`, a checkpoint);
//! 3. stream DIR as tar + zstd straight to the repository (S3 multipart above one 8 MiB part),
//!    hashing it on the way: memory stays at a few parts whatever the size;
//! 4. write the manifest (SHA-256, size, counts): the version exists from then on;
//! 5. verify: read the archive back and compare its SHA-256;
//! 6. only then apply retention (`--keep-*`, restic's rules) and remove interrupted uploads;
//! 7. write the marker into DIR (restore then knows the data is ours), release the lease.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use clap::{Parser, ValueEnum};
use initbox_archive::{Compression, Encoder, HashingWriter};
use initbox_aws::AwsArgs;
use initbox_aws::s3::S3Args;
use initbox_repository::lease::Lease;
use initbox_repository::retention::{self, Policy};
use initbox_repository::store::{PART_SIZE, PartWriter};
use initbox_repository::{FORMAT, Manifest, Marker, Store};
use initbox_runtime::{Applet, Deadline, Failure, LogArgs, Outcome, duration};
use tracing::{info, warn};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Compress {
    Zstd,
    Gzip,
}

#[derive(Debug, Parser)]
#[command(
    name = "backup",
    version,
    about = "Back up a data directory as a verified tar+zstd archive to S3 or a directory, with retention",
    after_help = "Examples:\n  \
                  initbox backup --from /data --to s3://backups/app/ --keep-last 3 --keep-daily 7 \\\n    \
                  --pre \"sqlite3 app.db '.backup .initbox-snapshot.db'\"\n  \
                  initbox schedule --at 03:30 -- initbox backup --from /data --to s3://backups/app/ --keep-daily 14"
)]
pub struct Args {
    /// Data directory to back up (initbox's own .initbox-* entries are left out).
    #[arg(long, value_name = "DIR", env = initbox_runtime::env::BACKUP_FROM)]
    pub from: PathBuf,

    /// Repository: s3://BUCKET/PREFIX/ or file:///PATH/.
    #[arg(long, value_name = "DESTINATION", env = initbox_runtime::env::BACKUP_TO)]
    pub to: String,

    /// Command run in DIR before archiving, for a consistent copy; a failure stops the backup.
    #[arg(long, value_name = "CMD", env = initbox_runtime::env::BACKUP_PRE)]
    pub pre: Option<String>,

    /// Time limit of --pre.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration::parse, env = initbox_runtime::env::BACKUP_PRE_TIMEOUT)]
    pub pre_timeout: Duration,

    /// Compression of the archive.
    #[arg(
        long,
        value_name = "ALGORITHM",
        value_enum,
        default_value = "zstd",
        env = initbox_runtime::env::BACKUP_COMPRESSION
    )]
    pub compression: Compress,

    /// Keep the N newest versions.
    #[arg(long, value_name = "N", default_value_t = 0, env = initbox_runtime::env::KEEP_LAST)]
    pub keep_last: u32,
    /// Keep the newest version of each of the last N hours that have one.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        env = initbox_runtime::env::KEEP_HOURLY
    )]
    pub keep_hourly: u32,
    /// Keep the newest version of each of the last N days that have one.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        env = initbox_runtime::env::KEEP_DAILY
    )]
    pub keep_daily: u32,
    /// Keep the newest version of each of the last N ISO weeks that have one.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        env = initbox_runtime::env::KEEP_WEEKLY
    )]
    pub keep_weekly: u32,
    /// Keep the newest version of each of the last N months that have one.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        env = initbox_runtime::env::KEEP_MONTHLY
    )]
    pub keep_monthly: u32,
    /// Keep the newest version of each of the last N years that have one.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        env = initbox_runtime::env::KEEP_YEARLY
    )]
    pub keep_yearly: u32,

    /// Lease of the repository lock: renewed every third of it; a dead holder loses it after this.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration::parse, env = initbox_runtime::env::BACKUP_LEASE)]
    pub lease: Duration,

    /// Give up after this long (exit 124; 0 = no limit).
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = duration::parse, env = initbox_runtime::env::TIMEOUT)]
    pub timeout: Duration,

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
        backup(self).await.map(|()| Outcome::OK)
    }
}

impl Args {
    fn policy(&self) -> Policy {
        Policy {
            last: self.keep_last,
            hourly: self.keep_hourly,
            daily: self.keep_daily,
            weekly: self.keep_weekly,
            monthly: self.keep_monthly,
            yearly: self.keep_yearly,
        }
    }
}

async fn run_pre(line: &str, dir: &Path, limit: Duration) -> Result<(), Failure> {
    let cmd = initbox_repository::data_dir_command("--pre", line, dir)?;
    let shown = cmd.shown();
    let running = cmd.spawn()?;
    let finished = tokio::time::timeout(limit, running.wait())
        .await
        .map_err(|_| {
            Failure::deadline(format!(
                "backup: --pre {shown} did not finish within {}",
                humantime::format_duration(limit)
            ))
        })??;
    finished
        .check()
        .map_err(|f| Failure::new(f.code, format!("backup: --pre failed: {}", f.message)))
}

async fn backup(args: Args) -> Result<(), Failure> {
    let started = Instant::now();
    let deadline = Deadline::after((!args.timeout.is_zero()).then_some(args.timeout));
    let dir = args.from.clone();
    if !dir.is_dir() {
        return Err(Failure::invalid_input(format!(
            "--from {}: not a directory",
            dir.display()
        )));
    }
    let store = Arc::new(initbox_repository::open(
        &args.to, &args.aws, &args.s3, deadline,
    )?);
    if let Store::Http { .. } = *store {
        return Err(Failure::usage(format!(
            "--to {}: an http(s) repository is read only (use s3:// or file://)",
            store.display()
        )));
    }
    let lease = Arc::new(Lease::acquire(&store, args.lease).await?);
    // Renew while working; a lost lease stops the backup before it prunes anything.
    let lost = Arc::new(AtomicBool::new(false));
    let renewer = {
        let (store, lease, lost) = (store.clone(), lease.clone(), lost.clone());
        tokio::spawn(async move {
            let every = (lease.ttl() / 3).max(Duration::from_secs(1));
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = lease.renew(&store).await {
                    warn!("backup: {}", e.message);
                    lost.store(true, Ordering::SeqCst);
                    return;
                }
            }
        })
    };
    let result = work(&args, &store, &dir, &lost, started).await;
    renewer.abort();
    let _ = renewer.await;
    if let Ok(lease) = Arc::try_unwrap(lease) {
        lease.release(&store).await;
    }
    result
}

async fn work(
    args: &Args,
    store: &Arc<Store>,
    dir: &Path,
    lost: &AtomicBool,
    started: Instant,
) -> Result<(), Failure> {
    if let Some(pre) = &args.pre {
        info!("backup: running --pre");
        run_pre(pre, dir, args.pre_timeout).await?;
    }
    let compression = match args.compression {
        Compress::Zstd => Compression::Zstd,
        Compress::Gzip => Compression::Gzip,
    };
    let id = initbox_repository::version_id(SystemTime::now());
    let archive = format!("{id}{}", compression.suffix());
    info!(repository = %store.display(), version = %id, "backup: streaming {} to the repository", dir.display());

    // Pack on a blocking thread; upload the parts as they come.
    let (parts, rx) = PartWriter::new(PART_SIZE);
    let src = dir.to_path_buf();
    let packer = tokio::task::spawn_blocking(move || -> Result<_, Failure> {
        let fail = |e: std::io::Error| Failure::failed(format!("backup: writing the archive: {e}"));
        let hashing = HashingWriter::new(parts);
        let mut enc = Encoder::new(hashing, compression).map_err(fail)?;
        let (_, stats) = initbox_archive::pack(&src, &mut enc, &|rel: &Path| {
            rel.parent() == Some(Path::new(""))
                && (initbox_archive::is_initbox_name(rel.as_os_str())
                    || rel == Path::new("lost+found"))
        })
        .map_err(|e| {
            if e.bad_archive {
                Failure::invalid_input(format!("backup: {e}"))
            } else {
                Failure::env_refused(format!("backup: {e}"))
            }
        })?;
        let hashing = enc.finish().map_err(fail)?;
        let (parts, sha256, size) = hashing.finish().map_err(fail)?;
        parts.finish().map_err(fail)?;
        Ok((stats, sha256, size))
    });
    let uploaded = store.upload(&archive, rx).await;
    let packed = packer
        .await
        .map_err(|e| Failure::failed(format!("backup: the packer stopped: {e}")))?;
    // The upload's own failure explains a packer's broken pipe best.
    uploaded?;
    let (stats, sha256, size) = packed?;

    let manifest = Manifest {
        format: FORMAT.into(),
        id: id.clone(),
        created: initbox_repository::now_rfc3339(),
        archive: archive.clone(),
        compression: match compression {
            Compression::Gzip => "gzip",
            Compression::None => "none",
            Compression::Zstd => "zstd",
        }
        .into(),
        size,
        sha256: sha256.clone(),
        entries: stats.entries,
        bytes: stats.bytes,
        host: initbox_runtime::host::name(),
    };
    let mut text = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    text.push(b'\n');
    store.put_small(&Manifest::name(&id), text).await?;
    info!(version = %id, size, entries = stats.entries, sha256 = %sha256, "backup: archive and manifest written");

    // Verify before anything is pruned: read the archive back.
    let Some(reader) = store.reader(&archive, Duration::from_secs(60)).await? else {
        return Err(Failure::failed(format!(
            "backup: verification failed: {archive} is not in the repository after its upload"
        )));
    };
    let (got, got_size) =
        tokio::task::spawn_blocking(move || initbox_archive::HashingReader::new(reader).finish())
            .await
            .map_err(|e| Failure::failed(format!("backup: the verifier stopped: {e}")))?
            .map_err(|e| {
                Failure::failed(format!(
                    "backup: verification failed reading {archive}: {e}"
                ))
            })?;
    if got != sha256 || got_size != size {
        return Err(Failure::failed(format!(
            "backup: verification failed: {archive} reads back as {got_size} bytes with SHA-256 {}, not {size} bytes with {}; nothing pruned",
            &got[..12],
            &sha256[..12]
        )));
    }
    info!(version = %id, "backup: verified (SHA-256 of the stored archive matches)");

    if lost.load(Ordering::SeqCst) {
        return Err(Failure::failed(
            "backup: the lease was lost during the backup; nothing pruned",
        ));
    }
    prune(args, store, &id).await?;

    Marker {
        version: id.clone(),
        sha256,
        at: initbox_repository::now_rfc3339(),
        by: "backup".into(),
        repository: store.display(),
    }
    .write(dir, None)?;
    info!(
        version = %id,
        size,
        elapsed = %format!("{:.1}s", started.elapsed().as_secs_f64()),
        "backup: done"
    );
    Ok(())
}

/// Retention (after verification, under the lease): versions the policy does not keep go,
/// manifest first (the version disappears at once), then the archive; archives without a
/// manifest (interrupted uploads) go too.
async fn prune(args: &Args, store: &Store, current: &str) -> Result<(), Failure> {
    let names = store.list().await?;
    let ids = initbox_repository::versions(&names);
    let policy = args.policy();
    let mut removed = 0usize;
    if !policy.is_empty() {
        let timed: Vec<(String, SystemTime)> = ids
            .iter()
            .map(|id| {
                (
                    id.clone(),
                    initbox_repository::id_time(id).unwrap_or(SystemTime::UNIX_EPOCH),
                )
            })
            .collect();
        for (id, keep) in retention::apply(&timed, &policy) {
            match keep {
                Some(why) => info!(version = %id, keep = %why, "backup: retention keeps"),
                None if id == current => {}
                None => {
                    let archive = names
                        .iter()
                        .find(|n| {
                            n.strip_prefix(id.as_str()).is_some_and(|s| {
                                Compression::from_name(s).is_some() && s.starts_with(".tar")
                            })
                        })
                        .cloned();
                    store.delete(&Manifest::name(&id)).await?;
                    if let Some(a) = archive {
                        store.delete(&a).await?;
                    }
                    info!(version = %id, "backup: retention removed");
                    removed += 1;
                }
            }
        }
    }
    // Interrupted uploads: archives without a manifest (we hold the lease: none is in flight).
    for n in &names {
        if n.starts_with('.') || Compression::from_name(n).is_none() {
            continue;
        }
        let id = n.split(".tar").next().unwrap_or_default();
        if !ids.iter().any(|v| v == id) && id != current {
            store.delete(n).await?;
            info!(archive = %n, "backup: removed an archive without a manifest (an interrupted upload)");
        }
    }
    if removed > 0 {
        info!(removed, "backup: retention applied");
    }
    Ok(())
}
