//! `--copy SRC[:DEST]`: files, or a directory's content, copied into the volume one file at a
//! time, each atomically (a temporary file beside it with its final mode and owner, fsync,
//! rename), so the application never reads half a file.
//!
//! Sources are read the way the kubelet means a ConfigMap or Secret mount: the visible names
//! are symbolic links into `..data/`, itself a link to the current timestamped directory
//! (`..2026_12_01_14_00_00.123456789/`). Links are followed as long as they resolve inside SRC,
//! and the kubelet's own `..`-prefixed entries are not copied; a link leading out of SRC is
//! refused. The copies are regular files with the mode the kubelet gave the source (its
//! `defaultMode`/`mode`), unless `--chmod` sets one.
//!
//! Destinations stay inside the volume: DEST is relative to it, may not climb out with `..`,
//! and no directory on the way may be a symbolic link.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use initbox_fsutil::Chmod;
use initbox_runtime::Failure;
use initbox_runtime::atomic::{self, WriteOptions};

/// One `--copy SRC[:DEST]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub src: PathBuf,
    /// Relative to the volume; empty: the volume itself.
    pub dest: PathBuf,
    /// DEST was written with a trailing `/`: a file source lands inside it under its name.
    pub dest_is_dir: bool,
}

impl Spec {
    pub fn parse(s: &str) -> Result<Spec, String> {
        let (src, dest) = s.split_once(':').unwrap_or((s, ""));
        if src.is_empty() {
            return Err(format!("'{s}' names no source (SRC[:DEST])"));
        }
        Ok(Spec {
            src: PathBuf::from(src),
            dest: inside(dest).map_err(|e| format!("'{s}': DEST {e}"))?,
            dest_is_dir: dest.is_empty() || dest.ends_with('/'),
        })
    }
}

/// A path relative to the volume, refusing absolute paths and `..`.
pub fn inside(p: &str) -> Result<PathBuf, String> {
    let path = Path::new(p);
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("'{p}' is absolute: give it relative to the volume"));
            }
            Component::ParentDir => return Err(format!("'{p}' climbs out of the volume")),
        }
    }
    Ok(out)
}

/// When an existing destination file is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    IfMissing,
    IfChanged,
}

/// What the copies did (or would do, in a check).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub copied: u64,
    /// Same content, mode and owner already (`--if-changed`).
    pub unchanged: u64,
    /// Already there, left as it is (`--if-missing`).
    pub kept: u64,
    pub directories_created: u64,
    /// Special files (sockets, FIFOs, devices) in a source tree, not copied.
    pub skipped: u64,
}

/// How the copies are made.
#[derive(Debug, Clone)]
pub struct Options {
    pub when: When,
    pub owner: Option<(u32, u32)>,
    pub chmod: Chmod,
    /// Look only: count what would be done.
    pub check: bool,
    /// What `--delete` would have deleted in a check (treated as missing).
    pub gone: Vec<PathBuf>,
}

/// `symlink_metadata`, an entry under one of `gone` (deleted by a checking `--delete`) being
/// missing.
fn lstat(path: &Path, gone: &[PathBuf]) -> io::Result<fs::Metadata> {
    if gone.iter().any(|g| path.starts_with(g)) {
        return Err(io::ErrorKind::NotFound.into());
    }
    fs::symlink_metadata(path)
}

/// One file or directory to lay down, relative to the copy's destination.
enum Item {
    Dir(PathBuf),
    File {
        rel: PathBuf,
        from: PathBuf,
        mode: u32,
    },
}

fn invalid(msg: String) -> Failure {
    Failure::invalid_input(msg)
}

/// A copy planned (its source read and checked), not yet made.
pub struct Plan {
    spec: Spec,
    items: Vec<Item>,
    skipped: u64,
}

impl Plan {
    /// Read and check `spec`'s source: nothing is written until every copy is planned.
    pub fn new(spec: &Spec) -> Result<Plan, Failure> {
        let (items, skipped) = plan(spec)?;
        Ok(Plan {
            spec: spec.clone(),
            items,
            skipped,
        })
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }
}

/// Plan the copy of `spec.src`: the directories and files to lay down, relative paths first.
fn plan(spec: &Spec) -> Result<(Vec<Item>, u64), Failure> {
    let src = &spec.src;
    let meta = fs::metadata(src).map_err(|e| invalid(format!("--copy {}: {e}", src.display())))?;
    if meta.is_file() {
        return Ok((
            vec![Item::File {
                rel: PathBuf::new(),
                from: src.clone(),
                mode: meta.mode() & 0o7777,
            }],
            0,
        ));
    }
    if !meta.is_dir() {
        return Err(invalid(format!(
            "--copy {}: not a regular file or a directory",
            src.display()
        )));
    }
    let root =
        fs::canonicalize(src).map_err(|e| invalid(format!("--copy {}: {e}", src.display())))?;
    let kubelet = fs::symlink_metadata(src.join("..data")).is_ok_and(|m| m.is_symlink());
    let mut items = Vec::new();
    let mut skipped = 0;
    let mut chain = vec![root.clone()];
    walk(
        src,
        &root,
        &root,
        PathBuf::new(),
        kubelet,
        &mut chain,
        &mut items,
        &mut skipped,
    )?;
    Ok((items, skipped))
}

#[allow(clippy::too_many_arguments)]
fn walk(
    shown: &Path,
    root: &Path,
    dir: &Path,
    rel: PathBuf,
    kubelet: bool,
    chain: &mut Vec<PathBuf>,
    items: &mut Vec<Item>,
    skipped: &mut u64,
) -> Result<(), Failure> {
    let read = |e: io::Error| invalid(format!("--copy {}: {e}", shown.join(&rel).display()));
    let mut names: Vec<_> = fs::read_dir(dir)
        .map_err(read)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(read)?;
    names.sort();
    for name in names {
        // The kubelet's own entries (`..data`, `..2026_…`): the visible names link into them.
        if kubelet && rel.as_os_str().is_empty() && name.as_encoded_bytes().starts_with(b"..") {
            continue;
        }
        let rel_child = rel.join(&name);
        let path = dir.join(&name);
        let shown_child = shown.join(&rel_child);
        let lmeta = fs::symlink_metadata(&path)
            .map_err(|e| invalid(format!("--copy {}: {e}", shown_child.display())))?;
        let real = if lmeta.is_symlink() {
            let target = fs::canonicalize(&path).map_err(|e| {
                invalid(format!(
                    "--copy {}: a symbolic link that does not resolve: {e}",
                    shown_child.display()
                ))
            })?;
            if !target.starts_with(root) {
                return Err(invalid(format!(
                    "--copy {}: a symbolic link leading out of {} (to {}); not copied",
                    shown_child.display(),
                    shown.display(),
                    target.display()
                )));
            }
            target
        } else {
            path
        };
        let meta = fs::metadata(&real)
            .map_err(|e| invalid(format!("--copy {}: {e}", shown_child.display())))?;
        if meta.is_dir() {
            if chain.contains(&real) {
                return Err(invalid(format!(
                    "--copy {}: a symbolic link loop",
                    shown_child.display()
                )));
            }
            items.push(Item::Dir(rel_child.clone()));
            chain.push(real.clone());
            walk(
                shown, root, &real, rel_child, kubelet, chain, items, skipped,
            )?;
            chain.pop();
        } else if meta.is_file() {
            items.push(Item::File {
                rel: rel_child,
                from: real,
                mode: meta.mode() & 0o7777,
            });
        } else {
            tracing::warn!(source = %shown_child.display(), "prepare-volume: not a regular file or a directory; not copied");
            *skipped += 1;
        }
    }
    Ok(())
}

/// Make `rel` (relative to `volume`) a directory, creating what is missing with `mode` and
/// `owner`; an existing component that is not a real directory (a link) is refused.
pub fn make_dirs(
    volume: &Path,
    rel: &Path,
    mode: u32,
    owner: Option<(u32, u32)>,
    check: bool,
    gone: &[PathBuf],
) -> Result<u64, Failure> {
    let mut cur = volume.to_path_buf();
    let mut created = 0;
    for c in rel.components() {
        cur.push(c);
        match lstat(&cur, gone) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => {
                return Err(Failure::invalid_input(format!(
                    "{} is in the way: not a directory{}",
                    cur.display(),
                    if fs::symlink_metadata(&cur).is_ok_and(|m| m.is_symlink()) {
                        " (a symbolic link is never followed inside the volume)"
                    } else {
                        ""
                    }
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                created += 1;
                if !check {
                    atomic::create_dirs(&cur, mode, owner)?;
                }
            }
            Err(e) => {
                return Err(Failure::env_refused(format!(
                    "cannot read {}: {e}",
                    cur.display()
                )));
            }
        }
    }
    Ok(created)
}

/// Whether `dest` already holds exactly `from`'s content with `mode` (and `owner`).
fn same(
    dest: &fs::Metadata,
    dest_path: &Path,
    from: &Path,
    mode: u32,
    owner: Option<(u32, u32)>,
) -> io::Result<bool> {
    if !dest.is_file()
        || dest.mode() & 0o7777 != mode
        || owner.is_some_and(|(u, g)| (dest.uid(), dest.gid()) != (u, g))
        || fs::metadata(from)?.len() != dest.len()
    {
        return Ok(false);
    }
    let (mut a, mut b) = (fs::File::open(from)?, fs::File::open(dest_path)?);
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = read_full(&mut a, &mut ba)?;
        let m = read_full(&mut b, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Where a copy lands inside `volume`: the directory its items go under, and for a file source
/// the name it gets there (DEST itself, or the source's name inside DEST).
fn layout(
    spec: &Spec,
    items: &[Item],
    volume: &Path,
) -> Result<(PathBuf, Option<PathBuf>), Failure> {
    let single_file = matches!(items, [Item::File { rel, .. }] if rel.as_os_str().is_empty());
    if !single_file {
        return Ok((spec.dest.clone(), None));
    }
    let into_dir =
        spec.dest_is_dir || fs::symlink_metadata(volume.join(&spec.dest)).is_ok_and(|m| m.is_dir());
    if into_dir {
        let name = spec.src.file_name().map(PathBuf::from).ok_or_else(|| {
            Failure::usage(format!("--copy {}: names no file", spec.src.display()))
        })?;
        Ok((spec.dest.clone(), Some(name)))
    } else {
        let parent = spec
            .dest
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Ok((parent, spec.dest.file_name().map(PathBuf::from)))
    }
}

impl Plan {
    /// Whether the source is a directory (its content is mirrored with `--delete`).
    pub fn is_tree(&self) -> bool {
        !matches!(self.items.as_slice(), [Item::File { rel, .. }] if rel.as_os_str().is_empty())
    }

    /// Where the copy lands in `volume` (relative to it), and every path it lays down there
    /// with whether it is a directory.
    pub fn targets(&self, volume: &Path) -> Result<(PathBuf, Vec<(PathBuf, bool)>), Failure> {
        let (base, file_name) = layout(&self.spec, &self.items, volume)?;
        let mut out = Vec::with_capacity(self.items.len());
        for item in &self.items {
            match item {
                Item::Dir(rel) => out.push((base.join(rel), true)),
                Item::File { rel, .. } => match &file_name {
                    Some(n) => out.push((base.join(n), false)),
                    None => out.push((base.join(rel), false)),
                },
            }
        }
        Ok((base, out))
    }
}

/// Copy one `--copy` into `volume`.
pub fn copy(plan: Plan, volume: &Path, opts: &Options) -> Result<Counts, Failure> {
    let Plan {
        spec,
        items,
        skipped,
    } = plan;
    let mut counts = Counts {
        skipped,
        ..Counts::default()
    };
    let dir_mode = opts.chmod.dir_mode(0o755);
    let (base, file_name) = layout(&spec, &items, volume)?;
    counts.directories_created +=
        make_dirs(volume, &base, dir_mode, opts.owner, opts.check, &opts.gone)?;
    for item in items {
        match item {
            Item::Dir(rel) => {
                counts.directories_created += make_dirs(
                    volume,
                    &base.join(rel),
                    dir_mode,
                    opts.owner,
                    opts.check,
                    &opts.gone,
                )?;
            }
            Item::File { rel, from, mode } => {
                let rel = match &file_name {
                    Some(n) => base.join(n),
                    None => base.join(rel),
                };
                let dest = volume.join(&rel);
                let mode = opts.chmod.file_mode(mode);
                place(&from, &dest, mode, opts, &mut counts)?;
            }
        }
    }
    Ok(counts)
}

/// Copy `from` to `dest` atomically unless `--if-missing`/`--if-changed` say it is not needed.
fn place(
    from: &Path,
    dest: &Path,
    mode: u32,
    opts: &Options,
    counts: &mut Counts,
) -> Result<(), Failure> {
    match lstat(dest, &opts.gone) {
        Ok(m) if m.is_dir() => {
            return Err(Failure::invalid_input(format!(
                "{} is a directory: cannot copy {} over it",
                dest.display(),
                from.display()
            )));
        }
        Ok(_) if opts.when == When::IfMissing => {
            counts.kept += 1;
            return Ok(());
        }
        Ok(m) if opts.when == When::IfChanged => {
            let unchanged = same(&m, dest, from, mode, opts.owner).map_err(|e| {
                Failure::env_refused(format!(
                    "cannot compare {} with {}: {e}",
                    dest.display(),
                    from.display()
                ))
            })?;
            if unchanged {
                counts.unchanged += 1;
                return Ok(());
            }
        }
        _ => {}
    }
    counts.copied += 1;
    if opts.check {
        return Ok(());
    }
    let mut src = fs::File::open(from)
        .map_err(|e| Failure::invalid_input(format!("cannot read {}: {e}", from.display())))?;
    let staged = atomic::stage_from(
        dest,
        &mut src,
        &WriteOptions {
            mode,
            owner: opts.owner,
            create_dirs: false,
        },
    )?;
    staged.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_stay_inside() {
        let s = Spec::parse("/config:conf/").unwrap();
        assert_eq!(s.src, PathBuf::from("/config"));
        assert_eq!(s.dest, PathBuf::from("conf"));
        assert!(s.dest_is_dir);
        let s = Spec::parse("/config/app.yaml:etc/app.yaml").unwrap();
        assert!(!s.dest_is_dir);
        assert_eq!(Spec::parse("/config").unwrap().dest, PathBuf::new());
        assert!(Spec::parse("/config:/etc").is_err());
        assert!(Spec::parse("/config:a/../../x").is_err());
        assert!(Spec::parse(":x").is_err());
    }
}
