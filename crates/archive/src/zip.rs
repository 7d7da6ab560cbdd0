//! Zip archives (the `zip` crate reads the format; the writing is ours): unpacked with the same
//! protections as tar ([`super::unpack`]). An entry whose name is absolute, climbs out with
//! `..` (a `\` counts as a separator, as Windows tools write it) or holds a NUL is refused; no
//! entry is written through a symbolic link; a symbolic link that leaves the target is refused;
//! encrypted entries are refused. Modes come from the entry's Unix mode when it has one (else
//! 0644 for files, 0755 for directories), `--chmod` overrides them; `--owner` applies to every
//! entry (zip stores no owner).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{Error, Stats, UnpackOptions, clean, ensure_parents, io_err, lchown, refused};

/// Unpack the zip archive `file` into `root`, which must exist. Returns the counts; the first
/// refused or failing entry ends it with an error.
pub fn unpack(file: File, root: &Path, opts: &UnpackOptions) -> Result<Stats, Error> {
    let mut archive = ::zip::ZipArchive::new(io::BufReader::with_capacity(256 * 1024, file))
        .map_err(|e| refused(format!("not a readable zip archive: {e}")))?;
    let mut stats = Stats::default();
    let mut dirs: Vec<(PathBuf, u32)> = Vec::new();
    let mut made: Vec<PathBuf> = Vec::new();
    let mut buf = vec![0u8; 128 * 1024];
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| refused(format!("entry {i}: {e}")))?;
        let raw = String::from_utf8_lossy(entry.name_raw()).replace('\\', "/");
        if raw.contains('\0') {
            return Err(refused(format!("entry {raw:?}: NUL in its name")));
        }
        let Some(raw) = super::stripped(Path::new(&raw), opts.strip_components) else {
            continue;
        };
        let raw = raw.to_string_lossy().into_owned();
        let rel = match clean(Path::new(&raw)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(why) => {
                return Err(refused(format!(
                    "entry {raw}: {why}; refusing an archive that writes outside the target"
                )));
            }
        };
        if entry.encrypted() {
            return Err(refused(format!(
                "entry {}: encrypted entries are not supported",
                rel.display()
            )));
        }
        let mode = entry.unix_mode().map(|m| m & 0o7777);
        ensure_parents(root, &rel, &mut made)?;
        let full = root.join(&rel);
        stats.entries += 1;
        if entry.is_dir() {
            match fs::symlink_metadata(&full) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(refused(format!(
                        "entry {}: already exists and is not a directory",
                        rel.display()
                    )));
                }
                Err(_) => fs::create_dir(&full).map_err(|e| io_err("cannot create", &full, e))?,
            }
            dirs.push((full, opts.chmod.dir_mode(mode.unwrap_or(0o755))));
        } else if entry.is_symlink() {
            let mut target = String::new();
            entry
                .read_to_string(&mut target)
                .map_err(|e| refused(format!("entry {}: {e}", rel.display())))?;
            if !super::link_stays_inside(&rel, Path::new(&target)) {
                return Err(refused(format!(
                    "entry {}: a symbolic link to {target} leaves the target; refusing it",
                    rel.display()
                )));
            }
            let _ = fs::remove_file(&full);
            std::os::unix::fs::symlink(&target, &full)
                .map_err(|e| io_err("cannot create the link", &full, e))?;
            if let Some((u, g)) = opts.owner {
                lchown(&full, u, g).map_err(|e| io_err("cannot change the owner of", &full, e))?;
            }
        } else {
            match fs::remove_file(&full) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("cannot replace", &full, e)),
            }
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&full)
                .map_err(|e| io_err("cannot create", &full, e))?;
            loop {
                // The zip reader checks each entry's CRC-32 at its end.
                let n = entry
                    .read(&mut buf)
                    .map_err(|e| refused(format!("entry {}: {e}", rel.display())))?;
                if n == 0 {
                    break;
                }
                f.write_all(&buf[..n])
                    .map_err(|e| io_err("cannot write", &full, e))?;
                stats.bytes += n as u64;
            }
            if let Some((u, g)) = opts.owner {
                std::os::unix::fs::fchown(&f, Some(u), Some(g))
                    .map_err(|e| io_err("cannot change the owner of", &full, e))?;
            }
            let m = opts.chmod.file_mode(mode.unwrap_or(0o644));
            f.set_permissions(fs::Permissions::from_mode(m))
                .map_err(|e| io_err("cannot change the mode of", &full, e))?;
        }
    }
    for d in made {
        if !dirs.iter().any(|(p, _)| *p == d) {
            dirs.push((d, opts.chmod.dir_mode(0o755)));
        }
    }
    // Deepest first, so a read-only parent is set after its children.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0.components().count()));
    for (d, mode) in dirs {
        if let Some((u, g)) = opts.owner {
            lchown(&d, u, g).map_err(|e| io_err("cannot change the owner of", &d, e))?;
        }
        fs::set_permissions(&d, fs::Permissions::from_mode(mode))
            .map_err(|e| io_err("cannot change the mode of", &d, e))?;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::zip::write::SimpleFileOptions;

    fn zip_with(entries: &[(&str, &[u8])], link: Option<(&str, &str)>) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        let mut w = ::zip::ZipWriter::new(f.reopen().unwrap());
        if let Some((at, to)) = link {
            w.add_symlink(at, to, SimpleFileOptions::default()).unwrap();
        }
        for (name, data) in entries {
            w.start_file(*name, SimpleFileOptions::default().unix_permissions(0o640))
                .unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap();
        f
    }

    #[test]
    fn unpacks_files_with_their_modes() {
        let z = zip_with(&[("a/b.txt", b"hello"), ("c", b"")], Some(("l", "a/b.txt")));
        let dst = tempfile::tempdir().unwrap();
        let s = unpack(z.reopen().unwrap(), dst.path(), &UnpackOptions::default()).unwrap();
        assert_eq!(s.bytes, 5);
        assert_eq!(fs::read(dst.path().join("l")).unwrap(), b"hello");
        use std::os::unix::fs::MetadataExt;
        let m = fs::metadata(dst.path().join("a/b.txt")).unwrap().mode() & 0o777;
        assert_eq!(m, 0o640);
    }

    #[test]
    fn refuses_escapes() {
        for (entries, link, what) in [
            (vec![("../evil", &b"x"[..])], None, "'..'"),
            (vec![("..\\evil", &b"x"[..])], None, "'..'"),
            (vec![("/tmp/evil", &b"x"[..])], None, "absolute"),
            (vec![], Some(("l", "/etc")), "leaves"),
            (
                vec![("l/x", &b"x"[..])],
                Some(("l", ".")),
                "not a directory",
            ),
        ] {
            let z = zip_with(&entries, link);
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("root");
            fs::create_dir(&root).unwrap();
            let e = unpack(z.reopen().unwrap(), &root, &UnpackOptions::default()).unwrap_err();
            assert!(e.bad_archive && e.message.contains(what), "{what}: {e}");
            assert!(!dir.path().join("evil").exists());
        }
    }
}
