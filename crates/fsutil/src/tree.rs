//! The incremental ownership and mode pass over a volume: every entry is looked at (one
//! `fstatat`), only those whose owner or mode differ from what is wanted are changed, so a
//! volume that is already right costs a directory walk and no write at all (its entries keep
//! their change times).
//!
//! Safety on a volume whose content is not trusted:
//! - a symbolic link is never followed: its own owner is changed (`lchown`, as `chown -R` and
//!   the kubelet do), never its mode (that would change its target's), and it is never
//!   descended into;
//! - directories are opened relative to their parent with `O_NOFOLLOW | O_DIRECTORY` and
//!   checked to be the inode that was looked at, then changed through that descriptor, so a
//!   directory swapped for a link during the walk is refused, not followed;
//! - files are changed relative to their directory's descriptor, without following links;
//! - the walk stays on the volume's filesystem: a mount point inside it (a ConfigMap or a
//!   subPath mounted there) is counted and skipped, as `find -xdev` does.
//!
//! [`Want::fs_group`] follows the kubelet's `fsGroup` rules (`SetVolumeOwnership`): the group
//! becomes the fsGroup, `rw` for the group is added to every file and `rwx` plus set-group-ID to
//! every directory, and links keep their mode; [`root_matches`] is its
//! `fsGroupChangePolicy: OnRootMismatch` test (`requiresPermissionChange`). Two differences, both
//! on purpose: the kubelet logs a failed change and goes on, this pass stops at the first one
//! with an error naming it; and it does not enter other filesystems.

use std::ffi::{CStr, OsStr};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{AtFlags, Dir, FileType, Gid, Mode, OFlags, Stat, Uid};

use crate::Chmod;

const SET_GID: u32 = 0o2000;
/// The kubelet's masks: `rw` for the group on every file, `x` on directories.
const FS_GROUP_RW: u32 = 0o660;
const FS_GROUP_EXEC: u32 = 0o110;

/// What every entry should look like.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Want {
    /// `uid:gid` of every entry.
    pub owner: Option<(u32, u32)>,
    /// Modes of directories and of everything else (links excepted).
    pub chmod: Chmod,
    /// Kubernetes' `fsGroup`: this group, group `rw` added (and `x` plus set-group-ID on
    /// directories). Applied after `owner` and `chmod`.
    pub fs_group: Option<u32>,
    /// Entries with one of these names (at any depth) are left alone and not entered
    /// (`lost+found`, a NAS's read-only `.snapshot`).
    pub skip: Vec<std::ffi::OsString>,
}

impl Want {
    /// Whether it asks for anything.
    pub fn is_empty(&self) -> bool {
        self.owner.is_none() && self.chmod.is_empty() && self.fs_group.is_none()
    }

    /// The owner and mode an entry with this status should have (`None`: keep its mode).
    fn target(&self, st: &Stat) -> (u32, u32, Option<u32>) {
        let kind = st.kind();
        let (uid, mut gid) = self.owner.unwrap_or((st.uid(), st.gid()));
        let current = st.perm();
        if kind == FileType::Symlink {
            return (uid, self.fs_group.unwrap_or(gid), None);
        }
        let dir = kind == FileType::Directory;
        let mut mode = (!self.chmod.is_empty()).then(|| self.chmod.mode(dir, current));
        if let Some(g) = self.fs_group {
            gid = g;
            let mask = if dir {
                FS_GROUP_RW | FS_GROUP_EXEC | SET_GID
            } else {
                FS_GROUP_RW
            };
            mode = Some(mode.unwrap_or(current) | mask);
        }
        (uid, gid, mode)
    }

    /// Whether an entry with this status already is as wanted.
    fn matches(&self, st: &Stat) -> bool {
        let (uid, gid, mode) = self.target(st);
        uid == st.uid() && gid == st.gid() && mode.is_none_or(|m| m == st.perm())
    }
}

/// What a pass found and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Entries looked at, the root included.
    pub entries: u64,
    pub directories: u64,
    /// Entries whose owner was changed (or would be, in a dry run).
    pub owners_changed: u64,
    /// Entries whose mode was changed (or would be, in a dry run).
    pub modes_changed: u64,
    /// Mount points inside the tree, skipped.
    pub other_filesystems: u64,
    /// Entries skipped by name ([`Want::skip`]).
    pub skipped: u64,
}

impl Counts {
    /// Entries changed in any way.
    pub fn changed(&self) -> u64 {
        self.owners_changed.max(self.modes_changed)
    }
}

/// Why a pass stopped.
#[derive(Debug)]
pub enum Error {
    /// A system call failed on `path`.
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// The caller's progress callback asked to stop.
    Stopped,
}

impl Error {
    /// Whether the system refused (permissions, a read-only filesystem), as opposed to the tree
    /// being odd.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Error::Io { source, .. } if matches!(
            source.raw_os_error(),
            Some(libc_errno::EPERM | libc_errno::EACCES | libc_errno::EROFS)
        ))
    }
}

/// The errno values [`Error::is_refusal`] looks for.
mod libc_errno {
    pub const EPERM: i32 = 1;
    pub const EACCES: i32 = 13;
    pub const EROFS: i32 = 30;
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io {
                action,
                path,
                source,
            } => write!(f, "{action} {}: {source}", path.display()),
            Error::Stopped => f.write_str("stopped"),
        }
    }
}

impl std::error::Error for Error {}

pub(crate) fn io_error<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(rustix::io::Errno) -> Error + 'a {
    move |e| Error::Io {
        action,
        path: path.to_path_buf(),
        source: e.into(),
    }
}

/// Whether `root` itself already is as wanted: Kubernetes' `fsGroupChangePolicy:
/// OnRootMismatch` then skips the whole walk. A root that is not a directory never matches.
pub fn root_matches(root: &Path, want: &Want) -> Result<bool, Error> {
    let st = rustix::fs::stat(root).map_err(io_error("cannot read", root))?;
    Ok(st.kind() == FileType::Directory && want.matches(&st))
}

/// Look at every entry under `root` (itself included) and change the owner and mode of those
/// that differ from `want`; with `dry_run`, only count them. `tick` is called every 1024
/// entries with the counts so far; returning `false` stops the pass ([`Error::Stopped`]).
pub fn apply(
    root: &Path,
    want: &Want,
    dry_run: bool,
    tick: &mut dyn FnMut(&Counts) -> bool,
) -> Result<Counts, Error> {
    // The root is the volume the caller named: a link naming it is followed, none below it.
    let fd = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io_error("cannot open the directory", root))?;
    let st = rustix::fs::fstat(&fd).map_err(io_error("cannot read", root))?;
    let mut walker = Walker {
        want,
        dry_run,
        dev: st.dev(),
        counts: Counts::default(),
        tick,
    };
    let mut path = root.to_path_buf();
    walker.directory(fd, &st, &mut path)?;
    Ok(walker.counts)
}

struct Walker<'a> {
    want: &'a Want,
    dry_run: bool,
    dev: u64,
    counts: Counts,
    tick: &'a mut dyn FnMut(&Counts) -> bool,
}

impl Walker<'_> {
    fn count(&mut self) -> Result<(), Error> {
        self.counts.entries += 1;
        if self.counts.entries.is_multiple_of(1024) && !(self.tick)(&self.counts) {
            return Err(Error::Stopped);
        }
        Ok(())
    }

    /// Fix a directory through its descriptor, then every entry in it.
    fn directory(&mut self, fd: OwnedFd, st: &Stat, path: &mut PathBuf) -> Result<(), Error> {
        self.count()?;
        self.counts.directories += 1;
        self.fix_open(fd.as_fd(), st, path)?;
        let mut reader =
            Dir::read_from(&fd).map_err(io_error("cannot read the directory", path))?;
        for entry in &mut reader {
            let entry = entry.map_err(io_error("cannot read the directory", path))?;
            let name = entry.file_name();
            if name == c"." || name == c".." {
                continue;
            }
            path.push(OsStr::from_bytes(name.to_bytes()));
            let result = self.entry(fd.as_fd(), name, path);
            path.pop();
            result?;
        }
        Ok(())
    }

    fn entry(
        &mut self,
        dirfd: BorrowedFd<'_>,
        name: &CStr,
        path: &mut PathBuf,
    ) -> Result<(), Error> {
        if self
            .want
            .skip
            .iter()
            .any(|n| n.as_bytes() == name.to_bytes())
        {
            self.counts.skipped += 1;
            return Ok(());
        }
        let st = match rustix::fs::statat(dirfd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            // Removed since the directory was read: nothing to fix.
            Err(rustix::io::Errno::NOENT) => return Ok(()),
            Err(e) => return Err(io_error("cannot read", path)(e)),
        };
        if st.dev() != self.dev {
            self.counts.other_filesystems += 1;
            return Ok(());
        }
        if st.kind() == FileType::Directory {
            let (fd, opened) = open_dir(dirfd, name, st.id(), path)?;
            return self.directory(fd, &opened, path);
        }
        self.count()?;
        self.fix_at(dirfd, name, &st, path)
    }

    /// Fix an entry reached through its own descriptor (a directory).
    fn fix_open(&mut self, fd: BorrowedFd<'_>, st: &Stat, path: &Path) -> Result<(), Error> {
        let (uid, gid, mode) = self.want.target(st);
        let mut current = st.perm();
        if (uid, gid) != (st.uid(), st.gid()) {
            self.counts.owners_changed += 1;
            if !self.dry_run {
                rustix::fs::fchown(fd, Some(uid_of(uid)), Some(gid_of(gid)))
                    .map_err(io_error("cannot change the owner of", path))?;
                current = rustix::fs::fstat(fd)
                    .map_err(io_error("cannot read", path))?
                    .perm();
            }
        }
        if let Some(m) = mode
            && m != current
        {
            self.counts.modes_changed += 1;
            if !self.dry_run {
                rustix::fs::fchmod(fd, Mode::from_raw_mode(m as _))
                    .map_err(io_error("cannot change the mode of", path))?;
            }
        }
        Ok(())
    }

    /// Fix a non-directory entry by name relative to its directory, never following a link.
    fn fix_at(
        &mut self,
        dirfd: BorrowedFd<'_>,
        name: &CStr,
        st: &Stat,
        path: &Path,
    ) -> Result<(), Error> {
        let (uid, gid, mode) = self.want.target(st);
        let mut current = st.perm();
        if (uid, gid) != (st.uid(), st.gid()) {
            self.counts.owners_changed += 1;
            if !self.dry_run {
                rustix::fs::chownat(
                    dirfd,
                    name,
                    Some(uid_of(uid)),
                    Some(gid_of(gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(io_error("cannot change the owner of", path))?;
                // Changing the owner clears set-user-ID and set-group-ID (of an executable).
                if mode.is_some() && current & 0o6000 != 0 {
                    current = rustix::fs::statat(dirfd, name, AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(io_error("cannot read", path))?
                        .perm();
                }
            }
        }
        let Some(m) = mode.filter(|m| *m != current) else {
            return Ok(());
        };
        self.counts.modes_changed += 1;
        if self.dry_run {
            return Ok(());
        }
        chmod_entry(dirfd, name, st, m, path)
    }
}

/// Open the directory `name` of `dirfd` without following a link, checked to be the entry `id`
/// (device, inode) that was looked at; its descriptor and status.
pub(crate) fn open_dir(
    dirfd: BorrowedFd<'_>,
    name: &CStr,
    id: (u64, u64),
    path: &Path,
) -> Result<(OwnedFd, Stat), Error> {
    let fd = rustix::fs::openat(
        dirfd,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io_error("cannot open the directory", path))?;
    let opened = rustix::fs::fstat(&fd).map_err(io_error("cannot read", path))?;
    if opened.id() != id {
        return Err(replaced(path));
    }
    Ok((fd, opened))
}

fn replaced(path: &Path) -> Error {
    Error::Io {
        action: "refusing",
        path: path.to_path_buf(),
        source: io::Error::other("it was replaced during the walk (by a symbolic link?)"),
    }
}

/// Whether `fchmodat2` (Linux 6.6) answered `ENOSYS`: then the slower way is taken from then on.
static NO_FCHMODAT2: AtomicBool = AtomicBool::new(false);

/// `chmod` of the entry `name` of `dirfd` that `st` describes, never through a link: with
/// `fchmodat2(AT_SYMLINK_NOFOLLOW)` in one call, else through an `O_PATH` descriptor opened
/// without following and checked to be that entry.
fn chmod_entry(
    dirfd: BorrowedFd<'_>,
    name: &CStr,
    st: &Stat,
    m: u32,
    path: &Path,
) -> Result<(), Error> {
    if !NO_FCHMODAT2.load(Ordering::Relaxed) {
        // SAFETY: a valid descriptor, a NUL-terminated name, plain integers.
        let r = unsafe {
            libc::syscall(
                libc::SYS_fchmodat2,
                dirfd.as_raw_fd(),
                name.as_ptr(),
                m as libc::c_uint,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENOSYS) => NO_FCHMODAT2.store(true, Ordering::Relaxed),
            // The entry became a link since it was looked at.
            Some(libc::EOPNOTSUPP) => return Err(replaced(path)),
            _ => {
                return Err(Error::Io {
                    action: "cannot change the mode of",
                    path: path.to_path_buf(),
                    source: e,
                });
            }
        }
    }
    let fd = rustix::fs::openat(
        dirfd,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io_error("cannot open", path))?;
    let opened = rustix::fs::fstat(&fd).map_err(io_error("cannot read", path))?;
    if opened.id() != st.id() || opened.kind() == FileType::Symlink {
        return Err(replaced(path));
    }
    let mode = Mode::from_raw_mode(m as _);
    match rustix::fs::chmod(format!("/proc/self/fd/{}", fd.as_raw_fd()), mode) {
        Ok(()) => Ok(()),
        // No /proc (a bare chroot): by name, just checked not to be a link.
        Err(rustix::io::Errno::NOENT) => rustix::fs::chmodat(dirfd, name, mode, AtFlags::empty())
            .map_err(io_error("cannot change the mode of", path)),
        Err(e) => Err(io_error("cannot change the mode of", path)(e)),
    }
}

/// The fields of a status used here, whatever their width on the target.
pub(crate) trait Status {
    fn kind(&self) -> FileType;
    fn perm(&self) -> u32;
    fn uid(&self) -> u32;
    fn gid(&self) -> u32;
    fn dev(&self) -> u64;
    /// Device and inode: which entry this is.
    fn id(&self) -> (u64, u64);
}

#[allow(clippy::unnecessary_cast)]
impl Status for Stat {
    fn kind(&self) -> FileType {
        FileType::from_raw_mode(self.st_mode as _)
    }
    fn perm(&self) -> u32 {
        self.st_mode as u32 & 0o7777
    }
    fn uid(&self) -> u32 {
        self.st_uid as u32
    }
    fn gid(&self) -> u32 {
        self.st_gid as u32
    }
    fn dev(&self) -> u64 {
        self.st_dev as u64
    }
    fn id(&self) -> (u64, u64) {
        (self.st_dev as u64, self.st_ino as u64)
    }
}

fn uid_of(u: u32) -> Uid {
    Uid::from_raw(u)
}

fn gid_of(g: u32) -> Gid {
    Gid::from_raw(g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn only_what_differs_is_changed_and_a_dry_run_changes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir(root.join("d")).unwrap();
        fs::write(root.join("d/right"), "").unwrap();
        fs::write(root.join("d/wrong"), "").unwrap();
        fs::set_permissions(root.join("d/right"), fs::Permissions::from_mode(0o640)).unwrap();
        fs::set_permissions(root.join("d/wrong"), fs::Permissions::from_mode(0o666)).unwrap();
        fs::set_permissions(root.join("d"), fs::Permissions::from_mode(0o750)).unwrap();
        fs::set_permissions(root, fs::Permissions::from_mode(0o750)).unwrap();
        symlink("/etc/hostname", root.join("d/link")).unwrap();
        let want = Want {
            chmod: Chmod::parse("D0750,F0640").unwrap(),
            ..Want::default()
        };
        let dry = apply(root, &want, true, &mut |_| true).unwrap();
        assert_eq!((dry.entries, dry.directories, dry.modes_changed), (5, 2, 1));
        assert_eq!(mode(&root.join("d/wrong")), 0o666);
        let done = apply(root, &want, false, &mut |_| true).unwrap();
        assert_eq!(done, dry);
        assert_eq!(mode(&root.join("d/wrong")), 0o640);
        let again = apply(root, &want, false, &mut |_| true).unwrap();
        assert_eq!((again.modes_changed, again.owners_changed), (0, 0));
        // The link's target was not touched.
        assert_ne!(
            fs::metadata("/etc/hostname").unwrap().mode() & 0o7777,
            0o640
        );
        assert!(root_matches(root, &want).unwrap());
    }

    #[test]
    fn fs_group_adds_the_kubelets_bits_and_keeps_the_rest() {
        let tmp = tempfile::tempdir().unwrap();
        let gid = fs::metadata(tmp.path()).unwrap().gid();
        let want = Want {
            fs_group: Some(gid),
            ..Want::default()
        };
        fs::write(tmp.path().join("f"), "").unwrap();
        fs::set_permissions(tmp.path().join("f"), fs::Permissions::from_mode(0o604)).unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o700)).unwrap();
        assert!(!root_matches(tmp.path(), &want).unwrap());
        apply(tmp.path(), &want, false, &mut |_| true).unwrap();
        assert_eq!(mode(&tmp.path().join("f")), 0o664);
        assert_eq!(mode(tmp.path()), 0o2770);
        assert!(root_matches(tmp.path(), &want).unwrap());
    }

    #[test]
    fn a_stopping_callback_stops_the_pass() {
        let tmp = tempfile::tempdir().unwrap();
        for i in 0..1100 {
            fs::write(tmp.path().join(i.to_string()), "").unwrap();
        }
        let want = Want {
            chmod: Chmod::parse("0600").unwrap(),
            ..Want::default()
        };
        let r = apply(tmp.path(), &want, true, &mut |_| false);
        assert!(matches!(r, Err(Error::Stopped)), "{r:?}");
    }
}
