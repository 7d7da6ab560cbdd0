//! Atomic file writes with tight modes: a temporary file in the destination's directory, its
//! mode set before a byte is written, fsync, optional chown, rename over the destination, fsync of
//! the directory. A reader sees the old file or the new one, never half of one; a crash leaves at
//! most a `.initbox-*` temporary file, never a partial destination.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

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
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_failure("cannot create directory", dir, e))
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
        if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// Write `contents` to a temporary file beside `dest` with the final mode and owner, fsynced.
/// Dropping the result without [`Staged::commit`] removes the temporary file.
pub fn stage(dest: &Path, contents: &[u8], opts: &WriteOptions) -> Result<Staged, Failure> {
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if opts.create_dirs && !dir.exists() {
        create_private_dir(&dir)?;
    }
    let mut hold = crate::signals::hold_exit();
    let mut temp = tempfile::Builder::new()
        .prefix(".initbox-")
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
    temp.write_all(contents)
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
    fn modes_and_owners_parse() {
        assert_eq!(parse_mode("0400").unwrap(), 0o400);
        assert_eq!(parse_mode("640").unwrap(), 0o640);
        assert!(parse_mode("0999").is_err());
        assert!(parse_mode("").is_err());
        assert_eq!(parse_owner("65532:65532").unwrap(), (65532, 65532));
        assert!(parse_owner("root:root").is_err());
    }
}
