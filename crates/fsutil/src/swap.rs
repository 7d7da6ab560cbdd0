//! Replacing a directory's data with a staging directory's, crash-safe, under a lock.
//!
//! DIR is usually a volume's mount point, which cannot itself be renamed, so the new data is
//! made in `DIR/.initbox-staging-*` (the same filesystem) and swapped in entry by entry,
//! driven by a journal written before the first change:
//!
//! 1. the journal = {staging, aside, phase: "aside" or "clear", marker}; every data entry of
//!    DIR (see [`data_entries`]) is renamed into the aside directory (phase "aside" with an
//!    aside name), removed (phase "clear"), or left (phase "aside" without one: DIR holds
//!    none);
//! 2. the phase becomes "in": every entry of the staging directory is renamed into DIR;
//! 3. the applet's `installed` step runs (restore writes its marker), then the staging
//!    directory and the journal are removed.
//!
//! A kill anywhere is finished by [`Layout::resume`] on the next run, before anything else: in
//! the first phase every data entry still in DIR is old, in phase "in" every one is new. Each
//! step is idempotent. The directory lock is `flock(2)` on a file in DIR: the kernel drops it
//! with the process, so a kill never leaves a stale lock.

use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use initbox_runtime::Failure;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The name prefix of staging directories (and what [`Layout::remove_stale_staging`] removes).
pub const STAGING: &str = ".initbox-staging-";

/// One applet's names in DIR, and its name in messages.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// The applet, in messages: "another APPLET is working on this directory".
    pub applet: &'static str,
    /// The lock file's name in DIR.
    pub lock: &'static str,
    /// The journal's name in DIR.
    pub journal: &'static str,
    /// What a leftover staging directory held, for the log: "unpack", "fetch".
    pub staging_holds: &'static str,
    /// What DIR's data is, in "cannot remove the old DATA PATH": "data", "checkout's".
    pub old_data: &'static str,
}

/// What becomes of DIR's data entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Old<'a> {
    /// Renamed into `DIR/NAME` (created), kept.
    Aside(&'a str),
    /// Removed.
    Remove,
    /// Left where they are (DIR holds none: an entry of the same name stops the swap).
    Leave,
}

/// The journal: `marker` is the applet's, handed to `installed` once the new entries are in.
#[derive(Debug, Serialize, Deserialize)]
struct Journal<M> {
    staging: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aside: Option<String>,
    phase: String,
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    marker: Option<M>,
}

fn none<M>() -> Option<M> {
    None
}

/// "WHAT PATH: ERROR", exit 4: the file system refused.
pub fn refused(what: &str, path: &Path, e: io::Error) -> Failure {
    Failure::env_refused(format!("{what} {}: {e}", path.display()))
}

/// fsync a directory, so the renames in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), Failure> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| refused("cannot sync", dir, e))
}

/// Whether a name is initbox's own (`.initbox-*`): never data, never archived.
pub fn is_initbox_name(name: &std::ffi::OsStr) -> bool {
    use std::os::unix::ffi::OsStrExt;
    name.as_bytes().starts_with(b".initbox-")
}

/// Entries of DIR that count as data (not `lost+found`, not initbox's own `.initbox-*`),
/// sorted; none when DIR does not exist.
pub fn data_entries(dir: &Path) -> Result<Vec<std::ffi::OsString>, Failure> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(refused("cannot list", dir, e)),
    };
    let mut v: Vec<_> = rd
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .filter(|n| n != "lost+found" && !is_initbox_name(n))
        .collect();
    v.sort();
    Ok(v)
}

/// A new, empty staging directory inside DIR, named for this process.
pub fn new_staging(dir: &Path) -> Result<PathBuf, Failure> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let path = dir.join(format!("{STAGING}{}-{nanos}", std::process::id()));
    fs::create_dir(&path).map_err(|e| refused("cannot create", &path, e))?;
    Ok(path)
}

impl Layout {
    /// Hold DIR's lock (released when the returned file is dropped or the process ends);
    /// exit 4 when another process holds it.
    pub fn lock(&self, dir: &Path) -> Result<fs::File, Failure> {
        let path = dir.join(self.lock);
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| refused("cannot open the lock", &path, e))?;
        // SAFETY: a valid open descriptor.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(Failure::env_refused(format!(
                "{}: another {} is working on this directory",
                dir.display(),
                self.applet
            )));
        }
        Ok(f)
    }

    /// Staging directories no journal refers to (call after [`Layout::resume`]) are leftovers
    /// of a killed run: removed, with the temporaries of interrupted atomic writes.
    pub fn remove_stale_staging(&self, dir: &Path) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(STAGING) {
                tracing::info!(staging = %e.path().display(), "{}: removing an interrupted {}", self.applet, self.staging_holds);
                let _ = fs::remove_dir_all(e.path());
            }
        }
        initbox_runtime::atomic::remove_stale_temporaries(dir);
    }

    /// Swap `staging` (a directory in DIR named `.initbox-staging-*`) into DIR, doing `old`
    /// with DIR's data first; `installed(marker)` runs once the new entries are in. The aside
    /// directory's path is returned.
    pub fn swap<M: Serialize + DeserializeOwned>(
        &self,
        dir: &Path,
        staging: &Path,
        old: Old<'_>,
        marker: Option<M>,
        installed: impl FnOnce(&M) -> Result<(), Failure>,
    ) -> Result<Option<PathBuf>, Failure> {
        let (phase, aside) = match old {
            Old::Aside(name) => ("aside", Some(name.to_string())),
            Old::Remove => ("clear", None),
            Old::Leave => ("aside", None),
        };
        let j = Journal {
            staging: staging
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            aside: aside.clone(),
            phase: phase.into(),
            marker,
        };
        self.write_journal(dir, &j)?;
        self.finish(dir, j, installed)?;
        Ok(aside.map(|a| dir.join(a)))
    }

    /// Complete an interrupted swap, if the journal says there is one.
    pub fn resume<M: Serialize + DeserializeOwned>(
        &self,
        dir: &Path,
        installed: impl FnOnce(&M) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        let path = dir.join(self.journal);
        let raw = match fs::read(&path) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(refused("cannot read", &path, e)),
        };
        let j: Journal<M> = serde_json::from_slice(&raw).map_err(|e| {
            Failure::invalid_input(format!(
                "{}: not initbox's swap journal: {e}",
                path.display()
            ))
        })?;
        tracing::warn!(phase = %j.phase, "{}: finishing a swap a previous run left unfinished", self.applet);
        self.finish(dir, j, installed)
    }

    fn write_journal<M: Serialize>(&self, dir: &Path, j: &Journal<M>) -> Result<(), Failure> {
        initbox_runtime::atomic::write(
            &dir.join(self.journal),
            &serde_json::to_vec_pretty(j).unwrap_or_default(),
            &initbox_runtime::atomic::WriteOptions {
                mode: 0o600,
                owner: None,
                create_dirs: false,
            },
        )?;
        sync_dir(dir)
    }

    fn finish<M: Serialize>(
        &self,
        dir: &Path,
        mut j: Journal<M>,
        installed: impl FnOnce(&M) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        if !j.staging.starts_with(STAGING) || j.staging.contains('/') {
            return Err(Failure::invalid_input(format!(
                "{}: the swap journal names a bad staging directory",
                dir.display()
            )));
        }
        if j.aside
            .as_ref()
            .is_some_and(|a| !a.starts_with(".initbox-") || a.contains('/') || a == &j.staging)
        {
            return Err(Failure::invalid_input(format!(
                "{}: the swap journal names a bad aside directory",
                dir.display()
            )));
        }
        let staging = dir.join(&j.staging);
        if j.phase != "in" {
            match (j.phase.as_str(), &j.aside) {
                ("aside", Some(a)) => {
                    let aside = dir.join(a);
                    match fs::create_dir(&aside) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(refused("cannot create", &aside, e)),
                    }
                    for name in data_entries(dir)? {
                        let from = dir.join(&name);
                        fs::rename(&from, aside.join(&name))
                            .map_err(|e| refused("cannot move aside", &from, e))?;
                    }
                    sync_dir(&aside)?;
                }
                ("aside", None) => {}
                ("clear", _) => {
                    for name in data_entries(dir)? {
                        let path = dir.join(&name);
                        let removed = if path.symlink_metadata().is_ok_and(|m| m.is_dir()) {
                            fs::remove_dir_all(&path)
                        } else {
                            fs::remove_file(&path)
                        };
                        removed.map_err(|e| {
                            refused(
                                &format!("cannot remove the old {}", self.old_data),
                                &path,
                                e,
                            )
                        })?;
                    }
                }
                (other, _) => {
                    return Err(Failure::invalid_input(format!(
                        "{}: the swap journal names an unknown phase '{other}'",
                        dir.display()
                    )));
                }
            }
            sync_dir(dir)?;
            j.phase = "in".into();
            self.write_journal(dir, &j)?;
        }
        if staging.exists() {
            let rd = fs::read_dir(&staging).map_err(|e| refused("cannot list", &staging, e))?;
            for e in rd.flatten() {
                let name = e.file_name();
                let to = dir.join(&name);
                if to.symlink_metadata().is_ok() {
                    // Only possible when the data was empty but for lost+found and the new data
                    // has one too: keep the volume's own.
                    if name == "lost+found" {
                        continue;
                    }
                    return Err(Failure::env_refused(format!(
                        "{}: {} appeared in {} during the swap; not replacing it",
                        self.applet,
                        name.to_string_lossy(),
                        dir.display()
                    )));
                }
                fs::rename(e.path(), &to)
                    .map_err(|er| refused("cannot move into place", &to, er))?;
            }
            sync_dir(dir)?;
        }
        if let Some(m) = &j.marker {
            installed(m)?;
        }
        let _ = fs::remove_dir_all(&staging);
        let journal = dir.join(self.journal);
        fs::remove_file(&journal).map_err(|e| refused("cannot remove", &journal, e))?;
        sync_dir(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYOUT: Layout = Layout {
        applet: "tester",
        lock: ".initbox-test-lock",
        journal: ".initbox-test-swap.json",
        staging_holds: "test",
        old_data: "data",
    };

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap()
    }

    /// A kill in the middle of the aside phase, or of the in phase: the next run's resume ends
    /// with exactly the new data in DIR, exactly the old data aside, and the marker handed over.
    #[test]
    fn an_interrupted_swap_with_the_old_data_aside_is_finished_by_resume() {
        for (phase, moved_aside, moved_in) in [
            ("aside", 0usize, 0usize),
            ("aside", 1, 0),
            ("in", 2, 0),
            ("in", 2, 1),
        ] {
            let t = tempfile::tempdir().unwrap();
            let dir = t.path();
            let staging = dir.join(".initbox-staging-v2");
            let aside = dir.join(".initbox-failed-x");
            fs::create_dir_all(&staging).unwrap();
            if moved_aside > 0 {
                fs::create_dir_all(&aside).unwrap();
            }
            for (i, n) in ["a", "b"].iter().enumerate() {
                let at = if i < moved_aside { &aside } else { dir };
                write(&at.join(n), &format!("old {n}"));
            }
            for (i, n) in ["a", "c"].iter().enumerate() {
                let at = if i < moved_in { dir } else { &staging };
                write(&at.join(n), &format!("new {n}"));
            }
            LAYOUT
                .write_journal(
                    dir,
                    &Journal {
                        staging: ".initbox-staging-v2".into(),
                        aside: Some(".initbox-failed-x".into()),
                        phase: phase.into(),
                        marker: Some("v2".to_string()),
                    },
                )
                .unwrap();
            let mut seen = None;
            LAYOUT
                .resume(dir, |m: &String| {
                    seen = Some(m.clone());
                    Ok(())
                })
                .unwrap();
            assert_eq!(seen.as_deref(), Some("v2"), "{phase}");
            assert_eq!(read(&dir.join("a")), "new a", "{phase} {moved_aside}");
            assert_eq!(read(&dir.join("c")), "new c");
            assert!(!dir.join("b").exists());
            assert_eq!(read(&aside.join("a")), "old a");
            assert_eq!(read(&aside.join("b")), "old b");
            assert!(!staging.exists() && !dir.join(LAYOUT.journal).exists());
        }
    }

    /// The same for a swap that removes the old data (git-checkout's): a directory of old data
    /// goes whole, and a journal without a marker (the form git-checkout wrote) is read.
    #[test]
    fn an_interrupted_swap_removing_the_old_data_is_finished_by_resume() {
        for (phase, old_left, new_moved) in
            [("clear", 2usize, 0usize), ("clear", 1, 0), ("in", 0, 1)]
        {
            let t = tempfile::tempdir().unwrap();
            let dir = t.path();
            let staging = dir.join(".initbox-staging-1-2");
            write(&staging.join(".git/HEAD"), "new\n");
            for n in ["a", "c"] {
                write(&staging.join(n), &format!("new {n}"));
            }
            for n in ["a", "c"].iter().take(new_moved) {
                fs::rename(staging.join(n), dir.join(n)).unwrap();
            }
            for n in ["b", "old-dir"].iter().take(old_left) {
                if *n == "old-dir" {
                    fs::create_dir_all(dir.join(n).join("deep")).unwrap();
                } else {
                    write(&dir.join(n), "old");
                }
            }
            write(
                &dir.join(LAYOUT.journal),
                &format!(r#"{{"staging":".initbox-staging-1-2","phase":"{phase}"}}"#),
            );
            LAYOUT
                .resume(dir, |_: &()| panic!("no marker was journaled"))
                .unwrap();
            assert_eq!(read(&dir.join("a")), "new a", "{phase}");
            assert_eq!(read(&dir.join("c")), "new c");
            assert_eq!(read(&dir.join(".git/HEAD")), "new\n");
            assert!(!dir.join("b").exists() && !dir.join("old-dir").exists());
            assert!(!staging.exists() && !dir.join(LAYOUT.journal).exists());
        }
    }

    #[test]
    fn a_whole_swap_keeps_lost_found_and_returns_the_aside_directory() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        fs::create_dir(dir.join("lost+found")).unwrap();
        write(&dir.join("old"), "old");
        let staging = new_staging(dir).unwrap();
        write(&staging.join("new"), "new");
        fs::create_dir(staging.join("lost+found")).unwrap();
        write(&staging.join("lost+found/from-the-archive"), "x");
        let aside = LAYOUT
            .swap(
                dir,
                &staging,
                Old::Aside(".initbox-failed-1"),
                Some(1u32),
                |_| Ok(()),
            )
            .unwrap();
        assert_eq!(aside, Some(dir.join(".initbox-failed-1")));
        assert_eq!(read(&dir.join(".initbox-failed-1/old")), "old");
        assert_eq!(read(&dir.join("new")), "new");
        assert!(!dir.join("lost+found/from-the-archive").exists());
        assert!(!staging.exists());
        assert_eq!(data_entries(dir).unwrap(), vec!["new"]);
    }

    #[test]
    fn an_entry_that_appears_during_the_swap_is_not_replaced() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        let staging = new_staging(dir).unwrap();
        write(&staging.join("a"), "new");
        write(&dir.join("a"), "someone else's");
        let e = LAYOUT
            .swap::<()>(dir, &staging, Old::Leave, None, |_| Ok(()))
            .unwrap_err();
        assert_eq!(e.code, initbox_runtime::exit::Code::ENV_REFUSED);
        assert!(
            e.message.starts_with("tester: a appeared in ")
                && e.message.ends_with("not replacing it"),
            "{}",
            e.message
        );
        assert_eq!(read(&dir.join("a")), "someone else's");
    }

    #[test]
    fn a_journal_naming_a_path_outside_dir_is_refused() {
        let t = tempfile::tempdir().unwrap();
        for (staging, aside) in [
            ("../elsewhere", None),
            (".initbox-staging-x/../..", None),
            (".initbox-staging-x", Some("../kept")),
            (".initbox-staging-x", Some("data")),
        ] {
            let j = serde_json::json!({"staging": staging, "aside": aside, "phase": "aside"});
            write(&t.path().join(LAYOUT.journal), &j.to_string());
            let e = LAYOUT.resume::<()>(t.path(), |_| Ok(())).unwrap_err();
            assert_eq!(e.code, initbox_runtime::exit::Code::INVALID_INPUT, "{j}");
        }
    }

    #[test]
    fn the_lock_is_held_once() {
        let t = tempfile::tempdir().unwrap();
        let held = LAYOUT.lock(t.path()).unwrap();
        let e = LAYOUT.lock(t.path()).unwrap_err();
        assert_eq!(e.code, initbox_runtime::exit::Code::ENV_REFUSED);
        assert!(
            e.message
                .ends_with(": another tester is working on this directory")
        );
        drop(held);
        LAYOUT.lock(t.path()).unwrap();
    }

    #[test]
    fn initbox_entries_and_lost_found_are_not_data() {
        let t = tempfile::tempdir().unwrap();
        assert!(data_entries(&t.path().join("missing")).unwrap().is_empty());
        for n in ["lost+found", ".initbox-git-lock", ".initbox-staging-x"] {
            fs::create_dir_all(t.path().join(n)).unwrap();
        }
        assert!(data_entries(t.path()).unwrap().is_empty());
        write(&t.path().join("README"), "x");
        write(&t.path().join(".hidden"), "x");
        assert_eq!(data_entries(t.path()).unwrap(), vec![".hidden", "README"]);
    }

    #[test]
    fn stale_staging_directories_go() {
        let t = tempfile::tempdir().unwrap();
        write(&t.path().join(".initbox-staging-9/a"), "x");
        write(&t.path().join("keep"), "x");
        LAYOUT.remove_stale_staging(t.path());
        assert!(!t.path().join(".initbox-staging-9").exists());
        assert!(t.path().join("keep").exists());
    }
}
