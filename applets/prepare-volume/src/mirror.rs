//! `--delete`: each `--copy` of a directory makes its destination a mirror of the source,
//! removing what the source does not have, before the copies are made (so an entry of the
//! wrong kind, a directory where the source has a file, gives way too).
//!
//! What the other copies and the `--mkdir` directories lay down is never deleted, nor the
//! directories leading to them, nor entries named by `--skip`; deleting never follows a link
//! and never leaves the volume's filesystem ([`initbox_fsutil::prune`]).

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use initbox_fsutil::prune::{self, Pruned, Verdict};
use initbox_fsutil::tree;
use initbox_runtime::Failure;
use tracing::info;

use crate::copy::Plan;

/// What a path (relative to the volume) is to the mirror being made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// This copy's directory or file.
    Dir,
    File,
    /// Laid down by another copy or `--mkdir`: left as it is, not entered.
    Other,
    /// Leads to one of those: entered.
    Leads,
}

/// What `--delete` did (or would do).
#[derive(Debug, Default)]
pub struct Deleted {
    /// Entries deleted, those inside deleted directories included.
    pub deleted: u64,
    /// The entries deleted at the top (inside the volume).
    pub paths: Vec<PathBuf>,
}

/// Delete, in each directory copy's destination, what its source does not have; returns what
/// was (or, with `check`, would be) deleted.
pub fn delete_extra(
    plans: &[Plan],
    volume: &Path,
    mkdirs: &[PathBuf],
    skip: &[OsString],
    check: bool,
) -> Result<Deleted, Failure> {
    let targets = plans
        .iter()
        .map(|p| p.targets(volume))
        .collect::<Result<Vec<_>, _>>()?;
    let mut total = Deleted::default();
    if !plans.iter().any(Plan::is_tree) {
        tracing::warn!(
            "prepare-volume: --delete mirrors directory copies, and every --copy here is of a file: nothing to delete"
        );
    }
    for (i, plan) in plans.iter().enumerate() {
        if !plan.is_tree() {
            continue;
        }
        let mut marks: HashMap<PathBuf, Mark> = HashMap::new();
        let other = |p: &Path, marks: &mut HashMap<PathBuf, Mark>| {
            marks.insert(p.to_path_buf(), Mark::Other);
            for a in p.ancestors().skip(1) {
                marks.entry(a.to_path_buf()).or_insert(Mark::Leads);
            }
        };
        for (j, (base, paths)) in targets.iter().enumerate() {
            if j == i {
                continue;
            }
            other(base, &mut marks);
            for (p, _) in paths {
                other(p, &mut marks);
            }
        }
        for d in mkdirs {
            other(d, &mut marks);
        }
        let (base, paths) = &targets[i];
        for (p, is_dir) in paths {
            marks.insert(p.clone(), if *is_dir { Mark::Dir } else { Mark::File });
        }
        let mut decide = |rel: &Path, dir: bool| {
            if rel.file_name().is_some_and(|n| skip.iter().any(|s| s == n)) {
                return Verdict::Keep;
            }
            match (marks.get(rel), dir) {
                (Some(Mark::Other), _) | (Some(Mark::File | Mark::Leads), false) => Verdict::Keep,
                (Some(Mark::Dir | Mark::Leads), true) => Verdict::Enter,
                // Not in the source; or a directory where it has a file, or the other way round.
                (Some(Mark::File), true) | (Some(Mark::Dir), false) | (None, _) => Verdict::Delete,
            }
        };
        let mut gone = Vec::new();
        let mut report = |rel: &Path, r: Pruned| {
            let path = volume.join(rel);
            gone.push(path.clone());
            let what = if r.deleted > 1 {
                format!(" ({} entries)", r.deleted)
            } else {
                String::new()
            };
            info!(
                path = %path.display(),
                entries = r.deleted,
                "prepare-volume: {} {}{what}: not in {}",
                if check { "would delete" } else { "deleted" },
                path.display(),
                plan.spec().src.display()
            );
            if r.other_filesystems > 0 {
                tracing::warn!(path = %path.display(), "prepare-volume: {} holds a mount point: left in place", path.display());
            }
        };
        let r =
            prune::prune(volume, base, check, &mut decide, &mut report).map_err(|e| failure(&e))?;
        total.deleted += r.deleted;
        total.paths.extend(gone);
    }
    Ok(total)
}

fn failure(e: &tree::Error) -> Failure {
    if e.is_refusal() {
        Failure::env_refused(format!("--delete: {e}"))
    } else {
        Failure::failed(format!("--delete: {e}"))
    }
}
