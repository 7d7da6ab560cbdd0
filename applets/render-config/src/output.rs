//! Writing rendered files: all staged first (temp file beside each destination, final mode and
//! owner, fsync), validated by `--check-cmd`, then all committed (rename). A destination that is
//! itself a mount point (a Kubernetes `subPath` or bind mount) cannot be renamed over; it is
//! written in place instead, as confd does.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use initbox_runtime::atomic::{self, Staged, WriteOptions};
use initbox_runtime::child::{self, Output};
use initbox_runtime::{Failure, redact};

/// One rendered file, ready to be written.
pub struct Planned {
    pub dest: PathBuf,
    pub contents: Vec<u8>,
    pub mode: u32,
    pub owner: Option<(u32, u32)>,
    /// What it was rendered from (for messages).
    pub source: String,
}

/// A staged file, and whether it must be written in place at commit.
pub struct StagedFile {
    staged: Staged,
    in_place: bool,
    planned: Planned,
}

impl StagedFile {
    pub fn path(&self) -> &Path {
        self.staged.path()
    }
    pub fn destination(&self) -> &Path {
        &self.planned.dest
    }
}

/// Whether `path` is a mount point: its device differs from its directory's (bind mounts of a
/// single file, Kubernetes `subPath`).
pub fn is_mount_point(path: &Path) -> bool {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return false;
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match fs::metadata(&parent) {
        Ok(pm) => pm.dev() != meta.dev(),
        Err(_) => false,
    }
}

/// Create the missing directories above `dest` (mode 0755 whatever the umask, handed to
/// `owner`).
pub fn create_parent_dirs(dest: &Path, owner: Option<(u32, u32)>) -> Result<(), Failure> {
    match dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => atomic::create_dirs(dir, 0o755, owner),
        None => Ok(()),
    }
}

fn io_failure(action: &str, path: &Path, e: &std::io::Error) -> Failure {
    let msg = format!("{action} {}: {e}", path.display());
    match e.kind() {
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
            Failure::env_refused(msg)
        }
        _ => Failure::failed(msg),
    }
}

/// Stage one file beside its destination.
pub fn stage(planned: Planned) -> Result<StagedFile, Failure> {
    if let Ok(meta) = fs::metadata(&planned.dest)
        && meta.is_dir()
    {
        return Err(Failure::usage(format!(
            "{} is a directory (rendering {} needs a file path there)",
            planned.dest.display(),
            planned.source
        )));
    }
    create_parent_dirs(&planned.dest, planned.owner)?;
    let in_place = is_mount_point(&planned.dest);
    let opts = WriteOptions {
        mode: planned.mode,
        owner: planned.owner,
        create_dirs: false,
    };
    let staged = atomic::stage(&planned.dest, &planned.contents, &opts)?;
    Ok(StagedFile {
        staged,
        in_place,
        planned,
    })
}

/// How many files are staged or committed at once: the fsyncs dominate, and the filesystem
/// journals concurrent ones together.
pub const PARALLEL: usize = 16;

/// Run `f` on every item, up to [`PARALLEL`] at once, results in input order.
fn parallel<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let n = items.len();
    if n <= 1 {
        return items.into_iter().map(f).collect();
    }
    let workers = n.min(PARALLEL);
    let mut lanes: Vec<Vec<(usize, T)>> = (0..workers).map(|_| Vec::new()).collect();
    for (i, item) in items.into_iter().enumerate() {
        lanes[i % workers].push((i, item));
    }
    let f = &f;
    let mut out: Vec<(usize, R)> = std::thread::scope(|s| {
        let handles: Vec<_> = lanes
            .into_iter()
            .map(|lane| {
                s.spawn(move || lane.into_iter().map(|(i, t)| (i, f(t))).collect::<Vec<_>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

/// Stage every file (directories first, then the files several at once). All or nothing: on a
/// failure every staged file is dropped, which removes its temporary file.
pub fn stage_all(planned: Vec<Planned>) -> Result<Vec<StagedFile>, Failure> {
    for p in &planned {
        if let Ok(meta) = fs::metadata(&p.dest)
            && meta.is_dir()
        {
            return Err(Failure::usage(format!(
                "{} is a directory (rendering {} needs a file path there)",
                p.dest.display(),
                p.source
            )));
        }
        create_parent_dirs(&p.dest, p.owner)?;
    }
    parallel(planned, stage).into_iter().collect()
}

/// Commit every staged file, several at once. Returns how many were installed and the first
/// failure, if any.
pub fn commit_all(staged: Vec<StagedFile>) -> (usize, Option<Failure>) {
    let results = parallel(staged, commit);
    let installed = results.iter().filter(|r| r.is_ok()).count();
    (installed, results.into_iter().find_map(Result::err))
}

/// Install a staged file: rename over the destination, or write in place when the
/// destination is a mount point (also when the rename is refused with EBUSY).
pub fn commit(file: StagedFile) -> Result<(), Failure> {
    let StagedFile {
        staged,
        in_place,
        planned,
    } = file;
    if in_place {
        drop(staged);
        tracing::info!(
            file = %planned.dest.display(),
            "destination is a mount point: writing it in place"
        );
        return write_in_place(&planned);
    }
    match staged.commit() {
        Ok(()) => Ok(()),
        // EBUSY: the destination is a mount point the device check did not catch.
        Err(f) if f.message.contains("(os error 16)") => {
            tracing::info!(
                file = %planned.dest.display(),
                "rename refused (busy): writing the destination in place"
            );
            write_in_place(&planned)
        }
        Err(f) => Err(f),
    }
}

fn write_in_place(planned: &Planned) -> Result<(), Failure> {
    let dest = &planned.dest;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(dest)
        .map_err(|e| io_failure("cannot open", dest, &e))?;
    let _ = f.set_permissions(fs::Permissions::from_mode(planned.mode & 0o7777));
    if let Some((u, g)) = planned.owner {
        std::os::unix::fs::fchown(&f, Some(u), Some(g))
            .map_err(|e| io_failure("cannot change the owner of", dest, &e))?;
    }
    f.write_all(&planned.contents)
        .and_then(|_| f.sync_all())
        .map_err(|e| io_failure("cannot write", dest, &e))
}

/// `--check-cmd`: split like a shell would (quotes, backslashes), no shell involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckCmd {
    pub words: Vec<String>,
}

pub fn parse_check_cmd(s: &str) -> Result<CheckCmd, String> {
    let words = shell_words::split(s).map_err(|e| format!("'{s}': {e}"))?;
    if words.is_empty() {
        return Err("empty command".into());
    }
    Ok(CheckCmd { words })
}

impl CheckCmd {
    /// Run on a staged file (`{}` is replaced by its path; appended when absent).
    pub async fn run(&self, staged: &Path, dest: &Path, limit: Duration) -> Result<(), Failure> {
        let path = staged.to_string_lossy();
        let mut argv: Vec<String> = self.words.iter().map(|w| w.replace("{}", &path)).collect();
        if !self.words.iter().any(|w| w.contains("{}")) {
            argv.push(path.to_string());
        }
        let program = argv[0].clone();
        // Its own process group, output kept as a bounded tail (the pipes are still drained),
        // stopped (SIGTERM, then SIGKILL) when it does not answer in time.
        let spawned = child::Command::new(&argv)
            .stdout(Output::Tail)
            .stderr(Output::Tail)
            .grace(child::PROBE_GRACE)
            .spawn()
            .map_err(|f| {
                let what = match f.code {
                    initbox_runtime::Code::NOT_FOUND => "command not found".to_string(),
                    _ => "not executable".to_string(),
                };
                Failure::usage(format!("--check-cmd {program}: {what}"))
            })?;
        let out = match tokio::time::timeout(limit, spawned.wait()).await {
            Err(_) => {
                return Err(Failure::failed(format!(
                    "--check-cmd {program} on {}: no answer within {}",
                    dest.display(),
                    humanize(limit)
                )));
            }
            Ok(r) => r?,
        };
        if out.success() {
            tracing::debug!(file = %dest.display(), "check passed");
            return Ok(());
        }
        let said = format!("{}\n{}", out.stderr, out.stdout);
        let said = said.replace(path.as_ref(), &dest.to_string_lossy());
        for line in said.lines().filter(|l| !l.trim().is_empty()).take(20) {
            tracing::warn!("check: {}", redact::scrub(line));
        }
        let status = child::brief(&out.status);
        let program = &program;
        let first = said
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(|l| format!(": {}", l.chars().take(200).collect::<String>()))
            .unwrap_or_default();
        Err(Failure::failed(format!(
            "--check-cmd {program} rejected {} ({status}){first}; nothing was written",
            dest.display()
        )))
    }
}

fn humanize(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_cmd_splits_like_a_shell() {
        let c = parse_check_cmd("nginx -t -c '{}' -g \"daemon off;\"").unwrap();
        assert_eq!(
            c.words,
            vec!["nginx", "-t", "-c", "{}", "-g", "daemon off;"]
        );
        assert!(parse_check_cmd("  ").is_err());
        assert!(parse_check_cmd("a 'b").is_err());
    }

    #[test]
    fn stage_then_commit_and_mount_detection() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a/b/c.conf");
        let f = stage(Planned {
            dest: dest.clone(),
            contents: b"x=1\n".to_vec(),
            mode: 0o640,
            owner: None,
            source: "c.conf.j2".into(),
        })
        .unwrap();
        assert!(!dest.exists());
        assert!(f.path().exists());
        commit(f).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"x=1\n");
        assert_eq!(fs::metadata(&dest).unwrap().mode() & 0o777, 0o640);
        assert_eq!(
            fs::metadata(dir.path().join("a")).unwrap().mode() & 0o777,
            0o755
        );
        assert!(!is_mount_point(&dest));
        assert!(is_mount_point(Path::new("/proc")) || !Path::new("/proc").exists());
    }

    #[test]
    fn in_place_write_keeps_the_inode() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        fs::write(&dest, "old old old").unwrap();
        let ino = fs::metadata(&dest).unwrap().ino();
        write_in_place(&Planned {
            dest: dest.clone(),
            contents: b"new".to_vec(),
            mode: 0o600,
            owner: None,
            source: "t".into(),
        })
        .unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"new");
        assert_eq!(fs::metadata(&dest).unwrap().ino(), ino);
        assert_eq!(fs::metadata(&dest).unwrap().mode() & 0o777, 0o600);
    }
}
