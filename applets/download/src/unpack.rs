//! `--unpack`: a verified archive unpacked into a directory with crates/archive (tar, gzip,
//! zstd, zip; entries that escape the target, links out and writes through links refused).
//!
//! The archive is unpacked into a staging directory inside DIR (the same filesystem, so DIR may
//! be a volume's mount point) and synced; only then are its top-level entries renamed into DIR,
//! replacing entries of the same name, and the entries the previous download put there and this
//! one does not have are removed. The marker `.initbox-download.json` is written last: a run
//! that finds it naming the same digest does nothing, and a run killed before it is written
//! starts the unpack again.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use initbox_archive::{Compression, UnpackOptions};
use initbox_runtime::Failure;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// From the file's first bytes, then its name.
    Auto,
    Tar,
    #[value(name = "tar.gz")]
    TarGz,
    #[value(name = "tar.zst")]
    TarZst,
    Zip,
}

/// The marker left in DIR: which archive its entries came from.
#[derive(Debug, Serialize, Deserialize)]
pub struct Marker {
    pub sha256: String,
    pub source: String,
    pub at: String,
    /// The top-level entries the archive put into DIR.
    pub entries: Vec<String>,
}

pub const MARKER: &str = ".initbox-download.json";
const STAGING: &str = ".initbox-staging-download";
const REPLACED: &str = ".initbox-replaced-download";

impl Marker {
    pub fn read(dir: &Path) -> Option<Marker> {
        serde_json::from_slice(&fs::read(dir.join(MARKER)).ok()?).ok()
    }
}

/// The format of the archive at `path` named `name`.
pub fn detect(path: &Path, name: &str, asked: Format) -> Result<Format, Failure> {
    if asked != Format::Auto {
        return Ok(asked);
    }
    let mut head = [0u8; 512];
    let n = File::open(path)
        .and_then(|mut f| read_up_to(&mut f, &mut head))
        .map_err(|e| Failure::failed(format!("cannot read {}: {e}", path.display())))?;
    let head = &head[..n];
    let by_magic = if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Some(Format::Zip)
    } else if head.starts_with(&[0x1f, 0x8b]) {
        Some(Format::TarGz)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Format::TarZst)
    } else if head.len() >= 262 && &head[257..262] == b"ustar" {
        Some(Format::Tar)
    } else {
        None
    };
    let by_name = match Compression::from_name(name) {
        Some(Compression::Zstd) => Some(Format::TarZst),
        Some(Compression::Gzip) => Some(Format::TarGz),
        Some(Compression::None) => Some(Format::Tar),
        None if name.to_ascii_lowercase().ends_with(".zip") => Some(Format::Zip),
        None => None,
    };
    by_magic.or(by_name).ok_or_else(|| {
        Failure::invalid_input(format!(
            "{name}: not a tar, tar.gz, tar.zst or zip archive (by its first bytes or its name); --unpack FORMAT names it"
        ))
    })
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Unpack `archive` into `dir` (see the module documentation); the counts.
pub fn install(
    archive: &Path,
    format: Format,
    dir: &Path,
    opts: &UnpackOptions,
    marker: Marker,
) -> Result<initbox_archive::Stats, Failure> {
    let staging = dir.join(STAGING);
    let replaced = dir.join(REPLACED);
    remove_any(&staging)?;
    remove_any(&replaced)?;
    fs::create_dir(&staging).map_err(|e| io_failure("cannot create", &staging, e))?;
    let file = File::open(archive).map_err(|e| io_failure("cannot open", archive, e))?;
    let result = match format {
        Format::Zip => initbox_archive::zip::unpack(file, &staging, opts),
        tar => {
            let compression = match tar {
                Format::TarGz => Compression::Gzip,
                Format::TarZst => Compression::Zstd,
                _ => Compression::None,
            };
            let reader = io::BufReader::with_capacity(256 * 1024, file);
            initbox_archive::decoder(reader, compression)
                .map_err(|e| initbox_archive::Error {
                    message: format!("reading the archive: {e}"),
                    bad_archive: true,
                })
                .and_then(|d| initbox_archive::unpack(d, &staging, opts))
        }
    };
    let stats = match result {
        Ok(s) => s,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(if e.bad_archive {
                Failure::invalid_input(format!("unpacking: {e}; nothing was installed"))
            } else {
                Failure::env_refused(format!("unpacking: {e}"))
            });
        }
    };
    initbox_archive::sync_tree(&staging).map_err(|e| io_failure("cannot sync", &staging, e))?;

    let mut names: Vec<String> = fs::read_dir(&staging)
        .map_err(|e| io_failure("cannot list", &staging, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    if names.iter().any(|n| n.starts_with(".initbox-")) {
        let _ = fs::remove_dir_all(&staging);
        return Err(Failure::invalid_input(
            "unpacking: the archive holds a top-level .initbox-* entry, a name initbox keeps for itself; nothing was installed",
        ));
    }
    // Entries of the previous download this one does not have go too.
    let old: Vec<String> = Marker::read(dir)
        .map(|m| m.entries)
        .unwrap_or_default()
        .into_iter()
        .filter(|n| !names.contains(n) && !n.contains('/') && !n.starts_with('.'))
        .collect();
    fs::create_dir(&replaced).map_err(|e| io_failure("cannot create", &replaced, e))?;
    for n in names.iter().chain(old.iter()) {
        let target = dir.join(n);
        if fs::symlink_metadata(&target).is_ok() {
            fs::rename(&target, replaced.join(n))
                .map_err(|e| io_failure("cannot move aside", &target, e))?;
        }
    }
    for n in &names {
        let from = staging.join(n);
        let to = dir.join(n);
        fs::rename(&from, &to).map_err(|e| io_failure("cannot install", &to, e))?;
    }
    let marker = Marker {
        entries: names,
        ..marker
    };
    let json = serde_json::to_vec_pretty(&marker).unwrap_or_default();
    initbox_runtime::atomic::write(
        &dir.join(MARKER),
        &json,
        &initbox_runtime::atomic::WriteOptions {
            mode: 0o644,
            owner: opts.owner,
            create_dirs: false,
        },
    )?;
    let _ = fs::remove_dir_all(&replaced);
    let _ = fs::remove_dir(&staging);
    Ok(stats)
}

fn remove_any(p: &PathBuf) -> Result<(), Failure> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p).map_err(|e| io_failure("cannot remove", p, e)),
        Ok(_) => fs::remove_file(p).map_err(|e| io_failure("cannot remove", p, e)),
        Err(_) => Ok(()),
    }
}

pub fn io_failure(what: &str, path: &Path, e: io::Error) -> Failure {
    let msg = format!("{what} {}: {e}", path.display());
    match e.kind() {
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
            Failure::env_refused(msg)
        }
        _ => Failure::failed(msg),
    }
}
