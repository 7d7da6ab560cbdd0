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
//! lock is `flock(2)` on `.initbox-git-lock`, dropped by the kernel with the process. The
//! journaled swap and the lock are `initbox_fsutil::swap`'s, shared with restore.
//!
//! initbox's own entries (`.initbox-*`) are listed in the checkout's `.git/info/exclude`, so
//! `git status` in DIR stays clean.

use std::fs;
use std::path::Path;

use initbox_fsutil::swap::{self, Layout, Old};
pub use initbox_fsutil::swap::{data_entries, new_staging};
use initbox_runtime::Failure;
use serde::{Deserialize, Serialize};

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

/// git-checkout's lock and swap journal in DIR (see `initbox_fsutil::swap`).
const LAYOUT: Layout = Layout {
    applet: "git-checkout",
    lock: ".initbox-git-lock",
    journal: ".initbox-git-swap.json",
    staging_holds: "fetch",
    old_data: "checkout's",
};

/// Create DIR when missing and hold its lock (released when the returned file is dropped or
/// the process ends).
pub fn lock(dir: &Path) -> Result<fs::File, Failure> {
    fs::create_dir_all(dir).map_err(|e| swap::refused("cannot create", dir, e))?;
    LAYOUT.lock(dir)
}

/// Complete an interrupted swap, if the journal says there is one.
pub fn resume(dir: &Path) -> Result<(), Failure> {
    LAYOUT.resume::<()>(dir, |_| Ok(()))
}

/// Staging directories no journal refers to are leftovers of a killed fetch: removed.
pub fn remove_stale_staging(dir: &Path) {
    LAYOUT.remove_stale_staging(dir)
}

/// Replace DIR's data (the old checkout, removed) with the staging directory's entries.
pub fn swap(dir: &Path, staging: &Path) -> Result<(), Failure> {
    LAYOUT
        .swap::<()>(dir, staging, Old::Remove, None, |_| Ok(()))
        .map(drop)
}
