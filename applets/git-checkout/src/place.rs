//! The checkout directory: what is in it, and replacing it crash-safe.
//!
//! DIR is usually a volume's mount point, which cannot itself be renamed, so a new checkout is
//! made in `DIR/.initbox-staging-*` (same filesystem) and swapped in entry by entry, driven by
//! a journal written before the first change:
//!
//! 1. `.initbox-git-swap.json` = {staging, phase: "clear"}; every data entry of DIR (the old
//!    checkout) is removed;
//! 2. phase "in": every entry of the staging directory is renamed into DIR;
//! 3. the staging directory and the journal are removed.
//!
//! A kill anywhere is finished by [`resume`] on the next run, before anything else: in phase
//! "clear" every data entry still in DIR is old, in phase "in" every one is new. The directory
//! lock is `flock(2)` on `.initbox-git-lock`, dropped by the kernel with the process.
//!
//! initbox's own entries (`.initbox-*`) are listed in the checkout's `.git/info/exclude`, so
//! `git status` in DIR stays clean.

use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use initbox_runtime::Failure;
use serde::{Deserialize, Serialize};

const JOURNAL: &str = ".initbox-git-swap.json";
const LOCK: &str = ".initbox-git-lock";
const STAGING: &str = ".initbox-staging-";
/// The checkout's record, inside its `.git`: what was checked out from where.
pub const MARKER: &str = "initbox-checkout.json";

/// What a checkout in DIR is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// The repository URL (never with a password: those are refused).
    pub url: String,
    /// The ref asked for (`HEAD` for the remote's default branch, or a commit id).
    #[serde(rename = "ref")]
    pub reference: String,
    /// The commit checked out.
    pub commit: String,
}

impl Marker {
    /// The marker of the checkout in `dir`, if `dir` holds one of initbox's.
    pub fn read(dir: &Path) -> Option<Marker> {
        let raw = fs::read(dir.join(".git").join(MARKER)).ok()?;
        let m: Marker = serde_json::from_slice(&raw).ok()?;
        // HEAD must still be that commit (detached, as initbox leaves it).
        let head = fs::read_to_string(dir.join(".git/HEAD")).ok()?;
        (head.trim() == m.commit).then_some(m)
    }

    pub fn write(&self, git_dir: &Path) -> Result<(), Failure> {
        initbox_runtime::atomic::write(
            &git_dir.join(MARKER),
            &serde_json::to_vec_pretty(self).unwrap_or_default(),
            &initbox_runtime::atomic::WriteOptions {
                mode: 0o644,
                owner: None,
                create_dirs: false,
            },
        )
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    staging: String,
    phase: String,
}

fn refused(what: &str, path: &Path, e: std::io::Error) -> Failure {
    Failure::env_refused(format!("{what} {}: {e}", path.display()))
}

/// Create DIR when missing and hold its lock (released when the returned file is dropped or
/// the process ends).
pub fn lock(dir: &Path) -> Result<fs::File, Failure> {
    fs::create_dir_all(dir).map_err(|e| refused("cannot create", dir, e))?;
    let path = dir.join(LOCK);
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| refused("cannot open the lock", &path, e))?;
    // SAFETY: a valid open descriptor.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(Failure::env_refused(format!(
            "{}: another git-checkout is working on this directory",
            dir.display()
        )));
    }
    Ok(f)
}

/// Entries of DIR that count as data (not `lost+found`, not initbox's own).
pub fn data_entries(dir: &Path) -> Result<Vec<std::ffi::OsString>, Failure> {
    let rd = fs::read_dir(dir).map_err(|e| refused("cannot list", dir, e))?;
    let mut v: Vec<_> = rd
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .filter(|n| {
            let s = n.to_string_lossy();
            s != "lost+found" && !s.starts_with(".initbox-")
        })
        .collect();
    v.sort();
    Ok(v)
}

/// A new, empty staging directory inside DIR.
pub fn new_staging(dir: &Path) -> Result<PathBuf, Failure> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let path = dir.join(format!("{STAGING}{}-{nanos}", std::process::id()));
    fs::create_dir(&path).map_err(|e| refused("cannot create", &path, e))?;
    Ok(path)
}

/// Staging directories no journal refers to are leftovers of a killed fetch: removed.
pub fn remove_stale_staging(dir: &Path) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        if e.file_name().to_string_lossy().starts_with(STAGING) {
            tracing::info!(staging = %e.path().display(), "git-checkout: removing an interrupted fetch");
            let _ = fs::remove_dir_all(e.path());
        }
    }
    initbox_runtime::atomic::remove_stale_temporaries(dir);
}

fn sync_dir(dir: &Path) -> Result<(), Failure> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| refused("cannot sync", dir, e))
}

fn write_journal(dir: &Path, j: &Journal) -> Result<(), Failure> {
    initbox_runtime::atomic::write(
        &dir.join(JOURNAL),
        &serde_json::to_vec(j).unwrap_or_default(),
        &initbox_runtime::atomic::WriteOptions {
            mode: 0o600,
            owner: None,
            create_dirs: false,
        },
    )?;
    sync_dir(dir)
}

/// Replace DIR's data with the staging directory's entries.
pub fn swap(dir: &Path, staging: &Path) -> Result<(), Failure> {
    let j = Journal {
        staging: staging
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        phase: "clear".into(),
    };
    write_journal(dir, &j)?;
    finish(dir, j)
}

/// Complete an interrupted swap, if the journal says there is one.
pub fn resume(dir: &Path) -> Result<(), Failure> {
    let path = dir.join(JOURNAL);
    let raw = match fs::read(&path) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(refused("cannot read", &path, e)),
    };
    let j: Journal = serde_json::from_slice(&raw).map_err(|e| {
        Failure::invalid_input(format!(
            "{}: not initbox's swap journal: {e}",
            path.display()
        ))
    })?;
    tracing::warn!(phase = %j.phase, "git-checkout: finishing a swap a previous run left unfinished");
    finish(dir, j)
}

fn finish(dir: &Path, mut j: Journal) -> Result<(), Failure> {
    if !j.staging.starts_with(STAGING) || j.staging.contains('/') {
        return Err(Failure::invalid_input(format!(
            "{}: the swap journal names a bad staging directory",
            dir.display()
        )));
    }
    let staging = dir.join(&j.staging);
    if j.phase == "clear" {
        for name in data_entries(dir)? {
            let path = dir.join(&name);
            let removed = if path.symlink_metadata().is_ok_and(|m| m.is_dir()) {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            removed.map_err(|e| refused("cannot remove the old checkout's", &path, e))?;
        }
        sync_dir(dir)?;
        j.phase = "in".into();
        write_journal(dir, &j)?;
    }
    if staging.exists() {
        let rd = fs::read_dir(&staging).map_err(|e| refused("cannot list", &staging, e))?;
        for e in rd.flatten() {
            let to = dir.join(e.file_name());
            if to.symlink_metadata().is_ok() {
                return Err(Failure::env_refused(format!(
                    "git-checkout: {} appeared in {} during the swap; not replacing it",
                    e.file_name().to_string_lossy(),
                    dir.display()
                )));
            }
            fs::rename(e.path(), &to).map_err(|er| refused("cannot move into place", &to, er))?;
        }
        sync_dir(dir)?;
        let _ = fs::remove_dir_all(&staging);
    }
    fs::remove_file(dir.join(JOURNAL))
        .map_err(|e| refused("cannot remove", &dir.join(JOURNAL), e))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kill in the middle of each phase: the next run's resume ends with exactly the new
    /// checkout in DIR.
    #[test]
    fn an_interrupted_swap_is_finished_by_resume() {
        for (phase, old_left, new_moved) in
            [("clear", 2usize, 0usize), ("clear", 1, 0), ("in", 0, 1)]
        {
            let t = tempfile::tempdir().unwrap();
            let dir = t.path();
            let staging = dir.join(".initbox-staging-1-2");
            fs::create_dir_all(staging.join(".git")).unwrap();
            fs::write(staging.join(".git/HEAD"), "new\n").unwrap();
            for n in ["a", "c"] {
                fs::write(staging.join(n), format!("new {n}")).unwrap();
            }
            if phase == "in" {
                for n in ["a", "c"].iter().take(new_moved) {
                    fs::rename(staging.join(n), dir.join(n)).unwrap();
                }
            }
            for n in ["b", "old-dir"].iter().take(old_left) {
                if *n == "old-dir" {
                    fs::create_dir_all(dir.join(n).join("deep")).unwrap();
                } else {
                    fs::write(dir.join(n), "old").unwrap();
                }
            }
            write_journal(
                dir,
                &Journal {
                    staging: ".initbox-staging-1-2".into(),
                    phase: phase.into(),
                },
            )
            .unwrap();
            resume(dir).unwrap();
            assert_eq!(
                fs::read_to_string(dir.join("a")).unwrap(),
                "new a",
                "{phase}"
            );
            assert_eq!(fs::read_to_string(dir.join("c")).unwrap(), "new c");
            assert_eq!(fs::read_to_string(dir.join(".git/HEAD")).unwrap(), "new\n");
            assert!(!dir.join("b").exists() && !dir.join("old-dir").exists());
            assert!(!staging.exists() && !dir.join(JOURNAL).exists());
        }
    }

    #[test]
    fn initbox_entries_and_lost_found_are_not_data() {
        let t = tempfile::tempdir().unwrap();
        for n in ["lost+found", ".initbox-git-lock", ".initbox-staging-x"] {
            fs::create_dir_all(t.path().join(n)).unwrap();
        }
        assert!(data_entries(t.path()).unwrap().is_empty());
        fs::write(t.path().join("README"), "x").unwrap();
        assert_eq!(data_entries(t.path()).unwrap(), vec!["README"]);
    }
}
