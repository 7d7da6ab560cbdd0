//! Swapping a verified staging directory into the data directory, crash-safe.
//!
//! DIR is usually a volume's mount point, which cannot itself be renamed, so the swap renames
//! its entries, driven by a journal written before the first rename:
//!
//! 1. `.initbox-swap.json` = {staging, aside, phase: "aside"};
//! 2. every data entry of DIR is renamed into `.initbox-failed-<time>/` (phase "aside");
//! 3. the journal's phase becomes "in"; every entry of the staging directory is renamed into
//!    DIR;
//! 4. the marker is written, the staging directory and the journal removed.
//!
//! A kill anywhere is finished by [`resume`] on the next run, before anything else: in phase
//! "aside" every data entry still in DIR is old, in phase "in" every one is new. Each step is
//! idempotent. The directory lock is `flock(2)` on `.initbox-lock`: the kernel drops it with
//! the process, so a kill never leaves a stale lock.

use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use initbox_repository::Marker;
use initbox_runtime::Failure;
use serde::{Deserialize, Serialize};

const JOURNAL: &str = ".initbox-swap.json";
const LOCK: &str = ".initbox-lock";

#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    staging: String,
    aside: Option<String>,
    phase: String,
    marker: Marker,
}

fn refused(what: &str, path: &Path, e: std::io::Error) -> Failure {
    Failure::env_refused(format!("{what} {}: {e}", path.display()))
}

/// Hold the directory's lock (released when the returned file is dropped or the process ends).
pub fn lock(dir: &Path) -> Result<fs::File, Failure> {
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
            "{}: another restore is working on this directory",
            dir.display()
        )));
    }
    Ok(f)
}

fn sync_dir(dir: &Path) -> Result<(), Failure> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| refused("cannot sync", dir, e))
}

fn write_journal(dir: &Path, j: &Journal) -> Result<(), Failure> {
    initbox_runtime::atomic::write(
        &dir.join(JOURNAL),
        &serde_json::to_vec_pretty(j).unwrap_or_default(),
        &initbox_runtime::atomic::WriteOptions {
            mode: 0o600,
            owner: None,
            create_dirs: false,
        },
    )
}

/// Staging directories no journal refers to are leftovers of a killed unpack: removed.
pub fn remove_stale_staging(dir: &Path) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let name = e.file_name();
        if name.to_string_lossy().starts_with(".initbox-staging-") {
            tracing::info!(staging = %e.path().display(), "restore: removing an interrupted unpack");
            let _ = fs::remove_dir_all(e.path());
        }
        // Temporary files of interrupted atomic writes (marker, journal).
    }
    initbox_runtime::atomic::remove_stale_temporaries(dir);
}

/// Swap `staging` into `dir`; with `aside`, the current data is kept in
/// `.initbox-failed-<time>/`, whose path is returned.
pub fn swap(
    dir: &Path,
    staging: &Path,
    aside: bool,
    marker: &Marker,
    owner: Option<(u32, u32)>,
) -> Result<Option<PathBuf>, Failure> {
    let aside_name = aside.then(|| {
        format!(
            ".initbox-failed-{}",
            initbox_repository::version_id(std::time::SystemTime::now())
        )
    });
    let j = Journal {
        staging: staging
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        aside: aside_name.clone(),
        phase: "aside".into(),
        marker: marker.clone(),
    };
    write_journal(dir, &j)?;
    sync_dir(dir)?;
    finish(dir, j, owner)?;
    Ok(aside_name.map(|a| dir.join(a)))
}

/// Complete an interrupted swap, if the journal says there is one.
pub fn resume(dir: &Path, owner: Option<(u32, u32)>) -> Result<(), Failure> {
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
    tracing::warn!(version = %j.marker.version, phase = %j.phase, "restore: finishing a swap a previous run left unfinished");
    finish(dir, j, owner)
}

fn finish(dir: &Path, mut j: Journal, owner: Option<(u32, u32)>) -> Result<(), Failure> {
    if !j.staging.starts_with(".initbox-staging-") || j.staging.contains('/') {
        return Err(Failure::invalid_input(format!(
            "{}: the swap journal names a bad staging directory",
            dir.display()
        )));
    }
    let staging = dir.join(&j.staging);
    if j.phase == "aside" {
        if let Some(a) = &j.aside {
            let aside = dir.join(a);
            match fs::create_dir(&aside) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(refused("cannot create", &aside, e)),
            }
            for name in crate::data_entries(dir)? {
                let from = dir.join(&name);
                fs::rename(&from, aside.join(&name))
                    .map_err(|e| refused("cannot move aside", &from, e))?;
            }
            sync_dir(&aside)?;
        }
        sync_dir(dir)?;
        j.phase = "in".into();
        write_journal(dir, &j)?;
        sync_dir(dir)?;
    }
    if staging.exists() {
        let rd = fs::read_dir(&staging).map_err(|e| refused("cannot list", &staging, e))?;
        for e in rd.flatten() {
            let name = e.file_name();
            let to = dir.join(&name);
            if to.symlink_metadata().is_ok() {
                // Only possible when the data was empty-but-for lost+found and the archive has
                // one too: keep the volume's own.
                if name == "lost+found" {
                    continue;
                }
                return Err(Failure::env_refused(format!(
                    "restore: {} appeared in {} during the swap; not replacing it",
                    name.to_string_lossy(),
                    dir.display()
                )));
            }
            fs::rename(e.path(), &to).map_err(|er| refused("cannot move into place", &to, er))?;
        }
        sync_dir(dir)?;
    }
    j.marker.write(dir, owner)?;
    let _ = fs::remove_dir_all(&staging);
    fs::remove_file(dir.join(JOURNAL))
        .map_err(|e| refused("cannot remove", &dir.join(JOURNAL), e))?;
    sync_dir(dir)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker() -> Marker {
        Marker {
            version: "v2".into(),
            sha256: "00".into(),
            at: "2026-12-01T00:00:00Z".into(),
            by: "restore".into(),
            repository: "file:///r".into(),
        }
    }

    /// A kill in the middle of each phase: the next run's resume ends with exactly the new
    /// data in DIR and exactly the old data aside.
    #[test]
    fn an_interrupted_swap_is_finished_by_resume() {
        for (phase, moved_aside, moved_in) in
            [("aside", 1usize, 0usize), ("in", 2, 0), ("in", 2, 1)]
        {
            let t = tempfile::tempdir().unwrap();
            let dir = t.path();
            let staging = dir.join(".initbox-staging-v2");
            let aside = dir.join(".initbox-failed-x");
            fs::create_dir_all(&staging).unwrap();
            fs::create_dir_all(&aside).unwrap();
            for (i, n) in ["a", "b"].iter().enumerate() {
                let at = if i < moved_aside {
                    &aside
                } else {
                    &dir.to_path_buf()
                };
                fs::write(at.join(n), format!("old {n}")).unwrap();
            }
            for (i, n) in ["a", "c"].iter().enumerate() {
                let at = if i < moved_in {
                    &dir.to_path_buf()
                } else {
                    &staging
                };
                fs::write(at.join(n), format!("new {n}")).unwrap();
            }
            let j = Journal {
                staging: ".initbox-staging-v2".into(),
                aside: Some(".initbox-failed-x".into()),
                phase: phase.into(),
                marker: marker(),
            };
            write_journal(dir, &j).unwrap();
            resume(dir, None).unwrap();
            assert_eq!(
                fs::read_to_string(dir.join("a")).unwrap(),
                "new a",
                "{phase}"
            );
            assert_eq!(fs::read_to_string(dir.join("c")).unwrap(), "new c");
            assert!(!dir.join("b").exists());
            assert_eq!(fs::read_to_string(aside.join("a")).unwrap(), "old a");
            assert_eq!(fs::read_to_string(aside.join("b")).unwrap(), "old b");
            assert!(!staging.exists() && !dir.join(JOURNAL).exists());
            assert_eq!(Marker::read(dir).unwrap().unwrap().version, "v2");
        }
    }
}
