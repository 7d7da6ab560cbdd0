//! `initbox prepare-volume DIR`: lay the ground in a volume before the application starts, in
//! this order:
//!
//! 1. DIR itself and each `--mkdir` inside it, created with the `--chmod` directory mode and
//!    `--owner`;
//! 2. each `--copy SRC[:DEST]` (a file, or a ConfigMap/Secret mount's content), one file at a
//!    time and atomically, always or `--if-missing` or `--if-changed` ([`copy`]);
//! 3. `--owner`, `--chmod` or `--fs-group` over DIR and everything in it, changing only the
//!    entries that differ, so a volume that is already right costs one directory walk and no
//!    write ([`initbox_fsutil::tree`]); `--on-root-mismatch` skips the walk when DIR itself is
//!    right, as Kubernetes' `fsGroupChangePolicy: OnRootMismatch` does.
//!
//! Nothing outside DIR is changed: links inside it are never followed, mount points inside it
//! are skipped. `--check` looks only, and exits 1 when something would be done. The summary
//! line counts what was looked at and what changed.

mod copy;
mod mirror;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use initbox_fsutil::Chmod;
use initbox_fsutil::tree::{self, Want};
use initbox_runtime::{Applet, Deadline, Failure, LogArgs, Outcome, atomic, duration, env};
use tracing::info;

pub use copy::Spec as CopySpec;

#[derive(Debug, Parser)]
#[command(
    name = "prepare-volume",
    version,
    about = "Prepare a volume: directories, copies of ConfigMap and Secret files, ownership and modes changed only where they differ",
    long_about = "Prepare the volume DIR before the application starts: create it and the --mkdir \
                  directories, copy files or trees into it (--copy, each file atomically; ConfigMap \
                  and Secret mounts are read through their ..data links, as the kubelet means them), \
                  then give DIR and everything in it --owner and --chmod (or Kubernetes' --fs-group \
                  rules), changing only the entries that differ: a volume that is already right costs \
                  one directory walk and no write. Symbolic links are never followed (a link's own \
                  owner is changed, never its target's), and mount points inside DIR are skipped. \
                  The last line counts what was looked at and what changed.",
    after_help = "Examples:\n  \
                  initbox prepare-volume /data --owner 1001:1001 --chmod D0750,F0640\n  \
                  initbox prepare-volume /data --fs-group 2000 --on-root-mismatch\n  \
                  initbox prepare-volume /work --mkdir tmp --mkdir logs --copy /config:conf/ --if-changed\n  \
                  initbox prepare-volume /work --copy /config:conf/ --if-changed --delete --chmod u=rwX,g=rX,o=\n\n\
                  --chmod takes octal modes and chmod's symbolic ones (g+rwX, a-w, +t), comma-separated \
                  and applied in order, each optionally prefixed with D (directories only) or F (the \
                  rest).\n\n\
                  --copy SRC[:DEST]: DEST is relative to DIR (default: DIR itself). A directory's \
                  content is copied into DEST; a file is copied to DEST, or into it when DEST ends \
                  with '/' or is a directory. Copies keep the source's mode (a ConfigMap's or \
                  Secret's defaultMode) unless --chmod sets one.\n\n\
                  --fs-group GID does what the kubelet does for a pod's fsGroup: the group becomes \
                  GID, group read-write is added to every file, and read-write-execute plus \
                  set-group-ID to every directory."
)]
pub struct Args {
    /// The volume to prepare (created when missing); nothing outside it is changed.
    #[arg(value_name = "DIR", env = env::PREPARE_VOLUME_DIR)]
    pub dir: PathBuf,

    /// Owner of DIR and everything in it, UID:GID, changed only where it differs (needs root or CAP_CHOWN).
    #[arg(long, value_name = "UID:GID", value_parser = atomic::parse_owner, env = env::PREPARE_VOLUME_OWNER)]
    pub owner: Option<(u32, u32)>,

    /// Modes of DIR and everything in it (links excepted): octal or chmod's symbolic form, D/F for directories/files only, e.g. D0750,F0640 or u=rwX,go=rX.
    #[arg(long, value_name = "SPEC", value_parser = Chmod::parse, env = env::PREPARE_VOLUME_CHMOD, allow_hyphen_values = true)]
    pub chmod: Option<Chmod>,

    /// Kubernetes' fsGroup, as the kubelet applies it: group GID, group rw on files, rwx and set-group-ID on directories.
    #[arg(long, value_name = "GID", env = env::PREPARE_VOLUME_FS_GROUP, conflicts_with_all = ["owner", "chmod"])]
    pub fs_group: Option<u32>,

    /// Skip the walk when DIR itself already has the wanted owner and mode (fsGroupChangePolicy: OnRootMismatch).
    #[arg(long, env = env::PREPARE_VOLUME_ON_ROOT_MISMATCH, value_parser = clap::builder::BoolishValueParser::new())]
    pub on_root_mismatch: bool,

    /// Leave entries with this name alone, at any depth, and do not enter them, e.g. lost+found or .snapshot (repeatable; comma-separated in the variable).
    #[arg(long, value_name = "NAME", env = env::PREPARE_VOLUME_SKIP, value_delimiter = ',', value_parser = parse_name)]
    pub skip: Vec<std::ffi::OsString>,

    /// Directory to create inside DIR, relative to it (repeatable; comma-separated in the variable).
    #[arg(long, value_name = "PATH", value_parser = parse_inside, env = env::PREPARE_VOLUME_MKDIR, value_delimiter = ',')]
    pub mkdir: Vec<PathBuf>,

    /// Copy a file, or a directory's content (a ConfigMap or Secret mount), to DEST inside DIR (repeatable; comma-separated in the variable).
    #[arg(long, value_name = "SRC[:DEST]", value_parser = copy::Spec::parse, env = env::PREPARE_VOLUME_COPY, value_delimiter = ',')]
    pub copy: Vec<copy::Spec>,

    /// Copy only files that are not in DIR yet (what the application changed is kept).
    #[arg(long, env = env::PREPARE_VOLUME_IF_MISSING, value_parser = clap::builder::BoolishValueParser::new(), conflicts_with = "if_changed")]
    pub if_missing: bool,

    /// Copy only files whose content, mode or owner differ (the others are not rewritten).
    #[arg(long, env = env::PREPARE_VOLUME_IF_CHANGED, value_parser = clap::builder::BoolishValueParser::new())]
    pub if_changed: bool,

    /// Make each directory copy a mirror: delete what its source does not have from its DEST, never following a link or leaving the volume.
    #[arg(long, env = env::PREPARE_VOLUME_DELETE, value_parser = clap::builder::BoolishValueParser::new(), requires = "copy")]
    pub delete: bool,

    /// Change nothing: count what would be created, copied and changed; exit 1 if anything would.
    #[arg(long, env = env::PREPARE_VOLUME_CHECK, value_parser = clap::builder::BoolishValueParser::new())]
    pub check: bool,

    /// Give up after this long (exit 124; 0 = no limit).
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = duration::parse, env = env::TIMEOUT)]
    pub timeout: Duration,

    #[command(flatten)]
    pub log: LogArgs,
}

fn parse_name(s: &str) -> Result<std::ffi::OsString, String> {
    if s.is_empty() || s == "." || s == ".." || s.contains('/') {
        return Err(format!("'{s}' is not a plain file name"));
    }
    Ok(s.into())
}

fn parse_inside(s: &str) -> Result<PathBuf, String> {
    let p = copy::inside(s)?;
    if p.as_os_str().is_empty() {
        return Err(format!("'{s}' names DIR itself"));
    }
    Ok(p)
}

impl Applet for Args {
    fn logging(&self) -> &LogArgs {
        &self.log
    }

    async fn run(self) -> Result<Outcome, Failure> {
        tokio::task::spawn_blocking(move || prepare(&self))
            .await
            .map_err(|e| Failure::failed(format!("prepare-volume stopped: {e}")))?
    }
}

/// The counts the summary line reports.
#[derive(Debug, Default)]
struct Summary {
    directories_created: u64,
    copies: copy::Counts,
    deleted: u64,
    tree: tree::Counts,
    walk_skipped: bool,
}

fn prepare(args: &Args) -> Result<Outcome, Failure> {
    let started = Instant::now();
    let deadline = Deadline::after((!args.timeout.is_zero()).then_some(args.timeout));
    let dir = &args.dir;
    let want = Want {
        owner: args.owner,
        chmod: args.chmod.clone().unwrap_or_default(),
        fs_group: args.fs_group,
        skip: args.skip.clone(),
    };
    let dir_mode = want.chmod.dir_mode(0o755);
    let mut sum = Summary::default();

    // Every copy's source is read and checked before anything is written.
    let plans = args
        .copy
        .iter()
        .map(copy::Plan::new)
        .collect::<Result<Vec<_>, _>>()?;

    // 1. DIR and the --mkdir directories.
    let exists = match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => true,
        Ok(_) => {
            return Err(Failure::invalid_input(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            return Err(Failure::env_refused(format!(
                "cannot read {}: {e}",
                dir.display()
            )));
        }
    };
    if !exists {
        sum.directories_created += 1;
        if !args.check {
            atomic::create_dirs(dir, dir_mode, args.owner)?;
        }
    }
    for d in &args.mkdir {
        sum.directories_created += copy::make_dirs(dir, d, dir_mode, args.owner, args.check, &[])?;
    }

    // 2. The copies: first what they do not have is deleted (--delete), then they are made.
    let mut gone = Vec::new();
    if args.delete && exists {
        let d = mirror::delete_extra(&plans, dir, &args.mkdir, &args.skip, args.check)?;
        sum.deleted = d.deleted;
        if args.check {
            gone = d.paths;
        }
    }
    let opts = copy::Options {
        when: if args.if_missing {
            copy::When::IfMissing
        } else if args.if_changed {
            copy::When::IfChanged
        } else {
            copy::When::Always
        },
        owner: args.owner,
        chmod: want.chmod.clone(),
        check: args.check,
        gone,
    };
    for plan in plans {
        let spec = plan.spec().clone();
        let c = copy::copy(plan, dir, &opts)?;
        info!(
            source = %spec.src.display(),
            dest = %dir.join(&spec.dest).display(),
            copied = c.copied,
            unchanged = c.unchanged,
            kept = c.kept,
            "prepare-volume: {} {}",
            if args.check { "would copy" } else { "copied" },
            spec.src.display()
        );
        add(&mut sum.copies, &c);
    }
    if deadline.expired() {
        return Err(Failure::deadline(
            "deadline exceeded before the ownership pass",
        ));
    }

    // 3. Ownership and modes, incrementally.
    if !want.is_empty() && (exists || !args.check) {
        let root_ok =
            args.on_root_mismatch && tree::root_matches(dir, &want).map_err(tree_failure)?;
        if root_ok {
            sum.walk_skipped = true;
            info!(dir = %dir.display(), "prepare-volume: DIR already has the wanted owner and mode; not walking it (--on-root-mismatch)");
        } else {
            sum.tree = walk(dir, &want, args.check, &deadline)?;
        }
    }

    let verb = if args.check {
        "would change"
    } else {
        "changed"
    };
    let t = &sum.tree;
    let c = &sum.copies;
    info!(
        dir = %dir.display(),
        entries = t.entries,
        owners_changed = t.owners_changed,
        modes_changed = t.modes_changed,
        other_filesystems = t.other_filesystems,
        skipped = t.skipped,
        directories_created = sum.directories_created,
        copied = c.copied,
        unchanged = c.unchanged,
        kept = c.kept,
        deleted = sum.deleted,
        walk_skipped = sum.walk_skipped,
        elapsed = %format!("{:.2}s", started.elapsed().as_secs_f64()),
        "prepare-volume: {}: {} entries looked at, {} owners and {} modes {verb}; {} directories {}, {} files {} ({} unchanged, {} kept){}{}",
        dir.display(),
        t.entries,
        t.owners_changed,
        t.modes_changed,
        sum.directories_created,
        if args.check { "to create" } else { "created" },
        c.copied,
        if args.check { "to copy" } else { "copied" },
        c.unchanged,
        c.kept,
        if args.delete {
            format!(", {} entries {}", sum.deleted, if args.check { "to delete" } else { "deleted" })
        } else {
            String::new()
        },
        match (t.other_filesystems, t.skipped) {
            (0, 0) => String::new(),
            (m, 0) => format!("; {m} mount points inside skipped"),
            (0, n) => format!("; {n} entries skipped by name"),
            (m, n) => format!("; {m} mount points inside and {n} entries by name skipped"),
        }
    );
    if args.check {
        let pending =
            t.owners_changed + t.modes_changed + sum.directories_created + c.copied + sum.deleted;
        if pending > 0 {
            return Err(Failure::failed(format!(
                "{} is not prepared: {} owners and {} modes to change, {} directories to create, {} files to copy, {} entries to delete",
                dir.display(),
                t.owners_changed,
                t.modes_changed,
                sum.directories_created,
                c.copied,
                sum.deleted
            )));
        }
    }
    Ok(Outcome::OK)
}

fn add(total: &mut copy::Counts, c: &copy::Counts) {
    total.copied += c.copied;
    total.unchanged += c.unchanged;
    total.kept += c.kept;
    total.directories_created += c.directories_created;
    total.skipped += c.skipped;
}

/// The ownership pass, with a progress line every 5 seconds and the deadline checked as it goes.
fn walk(
    dir: &Path,
    want: &Want,
    check: bool,
    deadline: &Deadline,
) -> Result<tree::Counts, Failure> {
    let mut last = Instant::now();
    let mut tick = |c: &tree::Counts| {
        if last.elapsed() >= Duration::from_secs(5) {
            last = Instant::now();
            info!(
                entries = c.entries,
                owners_changed = c.owners_changed,
                modes_changed = c.modes_changed,
                "prepare-volume: {} entries looked at so far, {} changed",
                c.entries,
                c.changed()
            );
        }
        !deadline.expired()
    };
    tree::apply(dir, want, check, &mut tick).map_err(tree_failure)
}

fn tree_failure(e: tree::Error) -> Failure {
    match &e {
        tree::Error::Stopped => Failure::deadline("deadline exceeded during the ownership pass"),
        tree::Error::Io { action, .. } if e.is_refusal() => {
            let hint = if action.contains("owner") {
                " (changing owners needs root or CAP_CHOWN)"
            } else {
                ""
            };
            Failure::env_refused(format!("{e}{hint}"))
        }
        tree::Error::Io { .. } => Failure::failed(e.to_string()),
    }
}
