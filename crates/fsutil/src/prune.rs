//! Pruning a tree inside a volume (`prepare-volume --copy … --delete`): the caller says, entry
//! by entry, what to keep, what to enter and what to delete; deleting never follows a symbolic
//! link (a link is removed itself, its target is untouched), never leaves the volume's
//! filesystem (a mount point is counted and left, with the directories holding it), and opens
//! every directory relative to its parent without following links, checked to be the entry
//! that was looked at.

use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};

use crate::tree::{Error, Status, io_error, open_dir};

/// What to do with an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Leave it and, for a directory, everything in it.
    Keep,
    /// A directory to look into (a non-directory is kept).
    Enter,
    /// Remove it and, for a directory, everything in it.
    Delete,
}

/// What a pruning removed (or would remove, in a dry run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Entries removed, those inside removed directories included.
    pub deleted: u64,
    /// Mount points met where something was to be deleted: left, with the directories
    /// holding them.
    pub other_filesystems: u64,
}

/// Prune the directory `start` (relative to `root`, reached without following links; missing
/// or not a plain directory: nothing to do). `decide` is asked about every entry by its path
/// relative to `root` and whether it is a directory; `deleted` is told each entry deleted at
/// the top (its path and what went with it).
pub fn prune(
    root: &Path,
    start: &Path,
    dry_run: bool,
    decide: &mut dyn FnMut(&Path, bool) -> Verdict,
    deleted: &mut dyn FnMut(&Path, Pruned),
) -> Result<Pruned, Error> {
    let fd = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io_error("cannot open the directory", root))?;
    let dev = rustix::fs::fstat(&fd)
        .map_err(io_error("cannot read", root))?
        .dev();
    let mut fd = fd;
    let mut rel = PathBuf::new();
    for c in start.components() {
        rel.push(c);
        let name = c_name(c.as_os_str(), &rel)?;
        match rustix::fs::openat(
            &fd,
            &name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(next) => fd = next,
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR | rustix::io::Errno::LOOP) => {
                return Ok(Pruned::default());
            }
            Err(e) => return Err(io_error("cannot open the directory", &root.join(&rel))(e)),
        }
    }
    let mut p = Pruner {
        root,
        dev,
        dry_run,
        decide,
        deleted,
        total: Pruned::default(),
    };
    p.directory(fd, &mut rel)?;
    Ok(p.total)
}

fn c_name(name: &OsStr, rel: &Path) -> Result<CString, Error> {
    CString::new(name.as_bytes()).map_err(|_| Error::Io {
        action: "cannot use",
        path: rel.to_path_buf(),
        source: std::io::Error::other("a NUL byte in the name"),
    })
}

struct Pruner<'a> {
    root: &'a Path,
    dev: u64,
    dry_run: bool,
    decide: &'a mut dyn FnMut(&Path, bool) -> Verdict,
    deleted: &'a mut dyn FnMut(&Path, Pruned),
    total: Pruned,
}

/// The names in a directory, `.` and `..` left out.
fn names(fd: &OwnedFd, path: &Path) -> Result<Vec<CString>, Error> {
    let mut out = Vec::new();
    for entry in Dir::read_from(fd).map_err(io_error("cannot read the directory", path))? {
        let entry = entry.map_err(io_error("cannot read the directory", path))?;
        let name = entry.file_name();
        if name != c"." && name != c".." {
            out.push(name.to_owned());
        }
    }
    out.sort();
    Ok(out)
}

impl Pruner<'_> {
    fn directory(&mut self, fd: OwnedFd, rel: &mut PathBuf) -> Result<(), Error> {
        let here = self.root.join(&*rel);
        for name in names(&fd, &here)? {
            rel.push(OsStr::from_bytes(name.to_bytes()));
            let r = self.entry(fd.as_fd(), &name, rel);
            rel.pop();
            r?;
        }
        Ok(())
    }

    fn entry(
        &mut self,
        dirfd: BorrowedFd<'_>,
        name: &CStr,
        rel: &mut PathBuf,
    ) -> Result<(), Error> {
        let path = self.root.join(&*rel);
        let st = match rustix::fs::statat(dirfd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => return Ok(()),
            Err(e) => return Err(io_error("cannot read", &path)(e)),
        };
        let dir = st.kind() == FileType::Directory;
        match (self.decide)(rel, dir) {
            Verdict::Keep => Ok(()),
            Verdict::Enter if !dir => Ok(()),
            Verdict::Enter => {
                if st.dev() != self.dev {
                    return Ok(());
                }
                let (fd, _) = open_dir(dirfd, name, st.id(), &path)?;
                self.directory(fd, rel)
            }
            Verdict::Delete => {
                let mut path = path;
                let r = remove_at(dirfd, name, &mut path, self.dev, self.dry_run)?;
                self.total.deleted += r.deleted;
                self.total.other_filesystems += r.other_filesystems;
                (self.deleted)(rel, r);
                Ok(())
            }
        }
    }
}

/// Remove the entry `name` of `dirfd` (shown as `path`) and, for a directory, everything in
/// it, without following links or leaving the filesystem `dev`; with `dry_run`, count only.
pub fn remove_at(
    dirfd: BorrowedFd<'_>,
    name: &CStr,
    path: &mut PathBuf,
    dev: u64,
    dry_run: bool,
) -> Result<Pruned, Error> {
    let mut r = Pruned::default();
    let st = match rustix::fs::statat(dirfd, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(rustix::io::Errno::NOENT) => return Ok(r),
        Err(e) => return Err(io_error("cannot read", path)(e)),
    };
    if st.dev() != dev {
        r.other_filesystems += 1;
        return Ok(r);
    }
    if st.kind() != FileType::Directory {
        if !dry_run {
            rustix::fs::unlinkat(dirfd, name, AtFlags::empty())
                .map_err(io_error("cannot delete", path))?;
        }
        r.deleted += 1;
        return Ok(r);
    }
    let (fd, _) = open_dir(dirfd, name, st.id(), path)?;
    for child in names(&fd, path)? {
        path.push(OsStr::from_bytes(child.to_bytes()));
        let sub = remove_at(fd.as_fd(), &child, path, dev, dry_run);
        path.pop();
        let sub = sub?;
        r.deleted += sub.deleted;
        r.other_filesystems += sub.other_filesystems;
    }
    // A directory holding a mount point stays (with the mount point).
    if r.other_filesystems == 0 {
        if !dry_run {
            rustix::fs::unlinkat(dirfd, name, AtFlags::REMOVEDIR)
                .map_err(io_error("cannot delete", path))?;
        }
        r.deleted += 1;
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    #[test]
    fn deletes_what_it_is_told_and_never_follows_a_link() {
        let tmp = tempfile::tempdir().unwrap();
        let (vol, outside) = (tmp.path().join("vol"), tmp.path().join("outside"));
        fs::create_dir_all(vol.join("keep/sub")).unwrap();
        fs::create_dir_all(vol.join("gone/deep")).unwrap();
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("precious"), "p").unwrap();
        fs::write(vol.join("keep/sub/old"), "").unwrap();
        fs::write(vol.join("keep/new"), "").unwrap();
        fs::write(vol.join("gone/deep/f"), "").unwrap();
        symlink(&outside, vol.join("gone/link")).unwrap();
        symlink(&outside, vol.join("keep/link")).unwrap();
        let mut decide = |rel: &Path, _dir: bool| match rel.to_str().unwrap() {
            "keep" | "keep/sub" => Verdict::Enter,
            "keep/new" => Verdict::Keep,
            _ => Verdict::Delete,
        };
        let mut seen = Vec::new();
        let dry = prune(&vol, Path::new(""), true, &mut decide, &mut |p, _| {
            seen.push(p.to_path_buf())
        })
        .unwrap();
        assert_eq!(
            dry.deleted, 6,
            "gone, deep, f, link; keep/sub/old, keep/link"
        );
        assert!(
            vol.join("gone/deep/f").exists(),
            "a dry run deletes nothing"
        );
        let done = prune(&vol, Path::new(""), false, &mut decide, &mut |_, _| {}).unwrap();
        assert_eq!(done, dry);
        assert!(!vol.join("gone").exists());
        assert!(!vol.join("keep/sub/old").exists());
        assert!(fs::symlink_metadata(vol.join("keep/link")).is_err());
        assert!(vol.join("keep/new").exists() && vol.join("keep/sub").is_dir());
        assert!(outside.join("precious").exists(), "links were not followed");
        assert_eq!(seen.len(), 3);
        // A start through a link is not entered.
        symlink(&outside, vol.join("via")).unwrap();
        let r = prune(
            &vol,
            Path::new("via"),
            false,
            &mut |_, _| Verdict::Delete,
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!(r, Pruned::default());
        assert!(outside.join("precious").exists());
    }
}
