//! The backup repository that `backup` writes and `restore` reads.
//!
//! Layout below the destination (`file:///backups/app/`, `s3://bucket/app/`, or the same tree
//! served over `http(s)://`):
//!
//! ```text
//! 2026-12-01T033000.123Z.tar.zst          the archive (tar + zstd)
//! 2026-12-01T033000.123Z.manifest.json    written after the archive: its SHA-256, size, counts
//! .initbox-lock.json                      the lease of the backup holding the repository
//! ```
//!
//! A version exists once its manifest does: an archive without one is an interrupted upload,
//! never restored and removed by the next retention run. Version ids are UTC times, so name
//! order is time order.
//!
//! The data directory carries a marker, `.initbox-state.json` (which version, its digest,
//! when, written by restore and by backup), from which restore tells "ours" from foreign data.

pub mod lease;
pub mod retention;
pub mod store;

use std::path::Path;
use std::time::SystemTime;

use initbox_runtime::Failure;
use initbox_runtime::atomic::{self, WriteOptions};
use serde::{Deserialize, Serialize};

pub use store::Store;

/// The manifest's format tag.
pub const FORMAT: &str = "initbox-backup/1";
/// Suffix of manifests.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";
/// The marker file in the data directory.
pub const MARKER: &str = ".initbox-state.json";

/// What backup records about one version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub format: String,
    pub id: String,
    /// RFC 3339 UTC.
    pub created: String,
    /// File name of the archive, beside the manifest.
    pub archive: String,
    pub compression: String,
    /// Size of the archive in bytes.
    pub size: u64,
    /// SHA-256 (hex) of the archive.
    pub sha256: String,
    pub entries: u64,
    /// Bytes of file data inside.
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl Manifest {
    pub fn name(id: &str) -> String {
        format!("{id}{MANIFEST_SUFFIX}")
    }

    pub fn compression(&self) -> initbox_archive::Compression {
        match self.compression.as_str() {
            "gzip" => initbox_archive::Compression::Gzip,
            "none" => initbox_archive::Compression::None,
            _ => initbox_archive::Compression::Zstd,
        }
    }

    pub fn created_time(&self) -> Option<SystemTime> {
        humantime::parse_rfc3339_weak(&self.created).ok()
    }
}

/// The marker in a data directory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Marker {
    /// The version the data came from (restore) or went to (backup).
    pub version: String,
    pub sha256: String,
    /// RFC 3339 UTC.
    pub at: String,
    /// `restore` or `backup`.
    pub by: String,
    /// The repository, for display (no credentials).
    pub repository: String,
}

impl Marker {
    pub fn read(dir: &Path) -> Result<Option<Marker>, Failure> {
        let path = dir.join(MARKER);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
                Failure::invalid_input(format!("marker {}: not initbox's: {e}", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Failure::env_refused(format!(
                "cannot read the marker {}: {e}",
                path.display()
            ))),
        }
    }

    pub fn write(&self, dir: &Path, owner: Option<(u32, u32)>) -> Result<(), Failure> {
        let mut text = serde_json::to_vec_pretty(self).unwrap_or_default();
        text.push(b'\n');
        atomic::write(
            &dir.join(MARKER),
            &text,
            &WriteOptions {
                mode: 0o644,
                owner,
                create_dirs: false,
            },
        )
    }
}

/// The store of a repository URL: `s3://BUCKET/PREFIX`, `file:///PATH` (or a plain absolute
/// path), `http(s)://…` (read only).
pub fn open(
    url: &str,
    aws: &initbox_aws::AwsArgs,
    s3: &initbox_aws::s3::S3Args,
    deadline: initbox_runtime::Deadline,
) -> Result<Store, Failure> {
    use std::sync::Arc;
    use std::time::Duration;
    if url.starts_with("s3://") {
        let aws = initbox_aws::Aws::new(aws, initbox_aws::s3::REQUEST_TIMEOUT, deadline)?;
        let s3 = initbox_aws::s3::S3::new(Arc::new(aws), s3)?;
        Store::s3(Arc::new(s3), url)
    } else if url.starts_with("file://") || url.starts_with('/') {
        Ok(Store::File {
            dir: store::file_dir(url),
        })
    } else if url.starts_with("http://") || url.starts_with("https://") {
        let tls = initbox_runtime::tls::client_config(&initbox_runtime::tls::TlsArgs::default())?;
        let mut opts = initbox_runtime::http::ClientOptions::new(
            tls,
            concat!("initbox/", env!("CARGO_PKG_VERSION")),
            Duration::from_secs(7 * 24 * 3600),
        );
        opts.connect_timeout = Duration::from_secs(10);
        let http = initbox_runtime::http::client(opts)?;
        let base = reqwest::Url::parse(url).map_err(|e| {
            Failure::usage(format!(
                "{}: not a URL: {e}",
                initbox_runtime::url::display(url)
            ))
        })?;
        Ok(Store::Http {
            http,
            base,
            deadline,
        })
    } else {
        Err(Failure::usage(format!(
            "{}: not an s3://, file:// or http(s):// repository",
            initbox_runtime::url::display(url)
        )))
    }
}

/// The command of backup's `--pre` and restore's `--check`: a shell-like command line (split
/// as a shell would, never run by one), run in the data directory `dir` with
/// `INITBOX_DATA_DIR` set to it, its output kept as a bounded tail. `flag` names the line in
/// the usage error of one that does not split (unbalanced quotes, empty).
pub fn data_dir_command(
    flag: &str,
    line: &str,
    dir: &Path,
) -> Result<initbox_runtime::child::Command, Failure> {
    use initbox_runtime::child::{Command, Output};
    let argv = shlex::split(line)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            Failure::usage(format!("{flag}: not a command line (unbalanced quotes?)"))
        })?;
    Ok(Command::new(argv)
        .current_dir(dir)
        .envs([("INITBOX_DATA_DIR", dir.as_os_str())])
        .stdout(Output::Tail)
        .stderr(Output::Tail))
}

/// Now as RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// A version id for `t`: `2026-12-01T033000.123Z` (RFC 3339 without colons: a file name and an
/// S3 key everywhere, and name order is time order).
pub fn version_id(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t)
        .to_string()
        .replace(':', "")
}

/// The time of a version id.
pub fn id_time(id: &str) -> Option<SystemTime> {
    // 2026-12-01T033000.123Z → 2026-12-01T03:30:00.123Z
    let (date, rest) = id.split_once('T')?;
    if rest.len() < 7 {
        return None;
    }
    let t = format!("{date}T{}:{}:{}", &rest[0..2], &rest[2..4], &rest[4..]);
    humantime::parse_rfc3339_weak(&t).ok()
}

/// The versions (ids with a manifest) among the names of a repository, newest first.
pub fn versions(names: &[String]) -> Vec<String> {
    let mut v: Vec<String> = names
        .iter()
        .filter_map(|n| n.strip_suffix(MANIFEST_SUFFIX))
        .filter(|id| !id.contains('/') && !id.starts_with('.'))
        .map(str::to_string)
        .collect();
    v.sort();
    v.reverse();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_sortable_times() {
        let t = humantime::parse_rfc3339("2026-12-01T03:30:00.123Z").unwrap();
        let id = version_id(t);
        assert_eq!(id, "2026-12-01T033000.123Z");
        assert_eq!(id_time(&id), Some(t));
        let names = vec![
            "2026-12-01T033000.123Z.manifest.json".to_string(),
            "2026-12-02T033000.000Z.manifest.json".to_string(),
            "2026-12-03T033000.000Z.tar.zst".to_string(),
            ".initbox-lock.json".to_string(),
        ];
        assert_eq!(
            versions(&names),
            ["2026-12-02T033000.000Z", "2026-12-01T033000.123Z"]
        );
    }
}
