//! Atomic file writes with tight modes: a temporary file in the destination's directory, its
//! mode set before a byte is written, fsync, optional chown, rename over the destination, fsync of
//! the directory. A reader sees the old file or the new one, never half of one; a crash leaves at
//! most a `.initbox-*` temporary file, never a partial destination.
//!
//! Temporary files are named `.initbox-NS-PID-RANDOM` (NS: the writer's PID namespace, PID its
//! process id). The first successful commit into a directory sweeps that directory once per run:
//! a temporary left by a killed run is removed when its writer is certainly gone (same PID
//! namespace, process no longer alive) or when it has not been modified for
//! [`STALE_AFTER`] (a writer in another container cannot be checked).
//!
//! Directories are created with their documented mode whatever the umask ([`create_dirs`]).

use std::collections::HashSet;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::exit::Failure;

#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    /// File mode, e.g. `0o400` for secrets.
    pub mode: u32,
    /// `uid:gid` to hand the file to (needs root or CAP_CHOWN).
    pub owner: Option<(u32, u32)>,
    /// Create missing parent directories with mode 0700.
    pub create_dirs: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            mode: 0o644,
            owner: None,
            create_dirs: true,
        }
    }
}

/// Parse an octal mode such as `0400`, `640` or `0o600`.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.trim().trim_start_matches("0o");
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o7777 && !digits.is_empty() => Ok(m),
        _ => Err(format!(
            "'{s}' is not an octal file mode (expected e.g. 0400, 0640)"
        )),
    }
}

/// Parse `UID:GID` (numbers, as in a pod's securityContext).
pub fn parse_owner(s: &str) -> Result<(u32, u32), String> {
    let (u, g) = s
        .split_once(':')
        .ok_or_else(|| format!("'{s}' is not UID:GID (expected e.g. 65532:65532)"))?;
    match (u.parse(), g.parse()) {
        (Ok(u), Ok(g)) => Ok((u, g)),
        _ => Err(format!("'{s}' is not UID:GID with numeric ids")),
    }
}

fn io_failure(action: &str, path: &Path, e: io::Error) -> Failure {
    let msg = format!("{action} {}: {e}", path.display());
    match e.kind() {
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
            Failure::env_refused(msg)
        }
        _ => Failure::failed(msg),
    }
}

/// Create `dir` and its missing parents with mode 0700.
pub fn create_private_dir(dir: &Path) -> Result<(), Failure> {
    create_dirs(dir, 0o700, None)
}

/// Create `dir` and its missing parents with exactly `mode`, whatever the umask: each created
/// directory is chmod-ed right after its creation (before the next one is made inside it) and
/// handed to `owner` if given. Existing directories are left as they are.
pub fn create_dirs(dir: &Path, mode: u32, owner: Option<(u32, u32)>) -> Result<(), Failure> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.as_os_str().is_empty() || fs::symlink_metadata(d).is_ok() {
            break;
        }
        missing.push(d.to_path_buf());
        cur = d.parent();
    }
    for d in missing.iter().rev() {
        match fs::DirBuilder::new().mode(mode & 0o7777).create(d) {
            Ok(()) => {}
            // Made meanwhile by someone else: theirs, keep its mode.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && d.is_dir() => continue,
            Err(e) => return Err(io_failure("cannot create directory", d, e)),
        }
        fs::set_permissions(d, fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|e| io_failure("cannot set the mode of", d, e))?;
        if let Some((u, g)) = owner {
            std::os::unix::fs::chown(d, Some(u), Some(g))
                .map_err(|e| io_failure("cannot change the owner of", d, e))?;
        }
    }
    Ok(())
}

/// A temporary file not modified for this long is stale even if its writer cannot be checked
/// (it ran in another container's PID namespace).
pub const STALE_AFTER: Duration = Duration::from_secs(15 * 60);

const TEMP_PREFIX: &str = ".initbox-";

/// The PID namespace of this process (its inode), 0 when /proc is not mounted.
fn pid_namespace() -> u64 {
    fs::metadata("/proc/self/ns/pid")
        .map(|m| m.ino())
        .unwrap_or(0)
}

fn temp_prefix() -> String {
    format!("{TEMP_PREFIX}{:x}-{}-", pid_namespace(), std::process::id())
}

/// Whether process `pid` of this PID namespace is alive (or cannot be ruled out).
fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    // SAFETY: signal 0 only checks that the process exists; no signal is sent.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Whether the temporary file `name` (with metadata `meta`) was left by a run that is over.
fn is_stale(name: &str, meta: &fs::Metadata, ns: u64, now: SystemTime) -> bool {
    let Some(rest) = name.strip_prefix(TEMP_PREFIX) else {
        return false;
    };
    let mut parts = rest.splitn(3, '-');
    let writer = match (parts.next(), parts.next(), parts.next()) {
        (Some(n), Some(p), Some(_)) => u64::from_str_radix(n, 16).ok().zip(p.parse::<u32>().ok()),
        _ => None,
    };
    if let Some((their_ns, pid)) = writer
        && ns != 0
        && their_ns == ns
        && pid != std::process::id()
        && !alive(pid)
    {
        return true;
    }
    meta.modified()
        .ok()
        .and_then(|m| now.duration_since(m).ok())
        .is_some_and(|age| age >= STALE_AFTER)
}

/// Remove the stale `.initbox-*` temporary files of `dir` (see the module documentation);
/// returns how many were removed. Errors are ignored: cleaning is best effort.
pub fn remove_stale_temporaries(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let (ns, now) = (pid_namespace(), SystemTime::now());
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(TEMP_PREFIX) {
            continue;
        }
        // Regular files only, never through a symlink.
        let Ok(meta) = fs::symlink_metadata(e.path()) else {
            continue;
        };
        if meta.is_file() && is_stale(name, &meta, ns, now) && fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::debug!(dir = %dir.display(), removed, "removed stale temporary files");
    }
    removed
}

/// Directories swept in this run (each once).
static SWEPT: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

fn sweep_once(dir: &Path) {
    let first = SWEPT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashSet::new)
        .insert(dir.to_path_buf());
    if first {
        remove_stale_temporaries(dir);
    }
}

/// A file written to a temporary name beside its destination, not yet visible.
pub struct Staged {
    temp: tempfile::NamedTempFile,
    dest: PathBuf,
    /// Removed by the signal watchdog if it ends the process before the commit.
    _tracked: crate::signals::Tracked,
}

impl Staged {
    /// The temporary path (e.g. to run a validation command on the staged file).
    pub fn path(&self) -> &Path {
        self.temp.path()
    }

    pub fn destination(&self) -> &Path {
        &self.dest
    }

    /// Rename the staged file over its destination and fsync the directory.
    pub fn commit(self) -> Result<(), Failure> {
        let dest = self.dest;
        let hold = crate::signals::hold_exit();
        self.temp
            .persist(&dest)
            .map_err(|e| io_failure("cannot rename into", &dest, e.error))?;
        drop(hold);
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        sweep_once(dir);
        Ok(())
    }
}

/// Write `contents` to a temporary file beside `dest` with the final mode and owner, fsynced.
/// Dropping the result without [`Staged::commit`] removes the temporary file.
pub fn stage(dest: &Path, contents: &[u8], opts: &WriteOptions) -> Result<Staged, Failure> {
    stage_with(dest, opts, |f| f.write_all(contents))
}

/// [`stage`] with the content streamed from `reader` (a large file copied in bounded memory).
pub fn stage_from(
    dest: &Path,
    reader: &mut dyn io::Read,
    opts: &WriteOptions,
) -> Result<Staged, Failure> {
    stage_with(dest, opts, |f| io::copy(reader, f).map(drop))
}

fn stage_with(
    dest: &Path,
    opts: &WriteOptions,
    fill: impl FnOnce(&mut fs::File) -> io::Result<()>,
) -> Result<Staged, Failure> {
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if opts.create_dirs && !dir.exists() {
        create_private_dir(&dir)?;
    }
    let mut hold = crate::signals::hold_exit();
    let mut temp = tempfile::Builder::new()
        .prefix(&temp_prefix())
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(&dir)
        .map_err(|e| io_failure("cannot create a temporary file in", &dir, e))?;
    let tracked = hold.track(temp.path());
    drop(hold);
    // The final mode before the content: a secret is never readable by others, not even briefly.
    fs::set_permissions(temp.path(), fs::Permissions::from_mode(opts.mode & 0o7777))
        .or_else(|e| {
            // A 0400 file can still be written through the open handle; only report real errors.
            if e.kind() == io::ErrorKind::PermissionDenied {
                Ok(())
            } else {
                Err(e)
            }
        })
        .map_err(|e| io_failure("cannot set the mode of", temp.path(), e))?;
    if let Some((uid, gid)) = opts.owner {
        std::os::unix::fs::fchown(temp.as_file(), Some(uid), Some(gid))
            .map_err(|e| io_failure("cannot change the owner of", dest, e))?;
    }
    fill(temp.as_file_mut())
        .and_then(|_| temp.as_file().sync_all())
        .map_err(|e| io_failure("cannot write", temp.path(), e))?;
    Ok(Staged {
        temp,
        dest: dest.to_path_buf(),
        _tracked: tracked,
    })
}

/// Stage and commit in one step.
pub fn write(dest: &Path, contents: &[u8], opts: &WriteOptions) -> Result<(), Failure> {
    stage(dest, contents, opts)?.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn writes_with_mode_and_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("sub/dir/secret.txt");
        let opts = WriteOptions {
            mode: 0o400,
            ..Default::default()
        };
        write(&dest, b"one", &opts).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"one");
        assert_eq!(fs::metadata(&dest).unwrap().mode() & 0o777, 0o400);
        assert_eq!(
            fs::metadata(dest.parent().unwrap()).unwrap().mode() & 0o777,
            0o700
        );
        write(&dest, b"two", &opts).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"two");
        let leftovers: Vec<_> = fs::read_dir(dest.parent().unwrap())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".initbox-"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn an_uncommitted_stage_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        write(&dest, b"old", &WriteOptions::default()).unwrap();
        let staged = stage(&dest, b"new", &WriteOptions::default()).unwrap();
        assert!(staged.path().exists());
        drop(staged);
        assert_eq!(fs::read(&dest).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn stale_temporaries_go_live_and_recent_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let ns = pid_namespace();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let names = [
            format!(".initbox-{ns:x}-{dead}-abc"),
            format!(".initbox-{ns:x}-{}-mine", std::process::id()),
            ".initbox-old".to_string(),
            ".initbox-fresh".to_string(),
            "keep.conf".to_string(),
        ];
        for n in &names {
            fs::write(dir.path().join(n), "x").unwrap();
        }
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        fs::File::options()
            .write(true)
            .open(dir.path().join(".initbox-old"))
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        assert_eq!(remove_stale_temporaries(dir.path()), 2);
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut want = vec![names[1].clone(), names[3].clone(), names[4].clone()];
        want.sort();
        assert_eq!(left, want);
    }

    #[test]
    fn modes_and_owners_parse() {
        assert_eq!(parse_mode("0400").unwrap(), 0o400);
        assert_eq!(parse_mode("640").unwrap(), 0o640);
        assert!(parse_mode("0999").is_err());
        assert!(parse_mode("").is_err());
        assert_eq!(parse_owner("65532:65532").unwrap(), (65532, 65532));
        assert!(parse_owner("root:root").is_err());
    }
}
