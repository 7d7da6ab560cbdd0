//! `initbox copy-self DIR`: copy this binary (and optionally one link per applet) into a shared
//! volume, so the application container can run `DIR/initbox wait-for-tcp db:5432 -- app` or
//! `DIR/initbox fetch-secret ... --exec -- app` as its entrypoint, without a shell and without
//! baking initbox into the application image.
//!
//! The copy is atomic (temporary file in DIR, mode 0755 set before the content, fsync, rename),
//! so an application container never sees a half-written binary; links are relative symlinks,
//! so they work wherever the volume is mounted.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use clap::Parser;
use initbox_runtime::atomic::{self, WriteOptions};
use initbox_runtime::{Applet, Failure, LogArgs, Outcome, inprocess};
use tracing::info;

#[derive(Debug, Parser)]
#[command(
    name = "copy-self",
    version,
    about = "Copy the initbox binary (and optionally its applet links) into a shared directory",
    long_about = "Copy this initbox binary into DIR (typically an emptyDir volume shared with the \
                  application container), atomically and with mode 0755, so the application \
                  container can run initbox from the volume as its entrypoint. With --links, also \
                  create a relative symlink per applet (DIR/wait-for-tcp -> initbox). Existing \
                  copies and links are replaced; any other file in the way is left alone and \
                  reported.",
    after_help = "Examples:\n  initbox copy-self /initbox-bin\n  \
                  initbox copy-self --links /shared/bin\n  \
                  # then, in the app container:\n  \
                  /initbox-bin/initbox wait-for-tcp db:5432 -- /app/server"
)]
pub struct Args {
    /// Directory to copy into (created with mode 0755 if missing).
    #[arg(value_name = "DIR", env = "INITBOX_COPY_SELF_DIR")]
    pub dir: PathBuf,

    /// Also create one relative symlink per applet next to the copy.
    #[arg(long, env = "INITBOX_COPY_SELF_LINKS", value_parser = clap::builder::BoolishValueParser::new())]
    pub links: bool,

    /// File name of the copy.
    #[arg(long, value_name = "NAME", default_value = "initbox", value_parser = parse_name,
          env = "INITBOX_COPY_SELF_NAME")]
    pub name: String,

    /// File mode of the copy (octal).
    #[arg(long, value_name = "MODE", default_value = "0755", value_parser = atomic::parse_mode,
          env = "INITBOX_COPY_SELF_MODE")]
    pub mode: u32,

    #[command(flatten)]
    pub log: LogArgs,
}

fn parse_name(s: &str) -> Result<String, String> {
    if s.is_empty() || s == "." || s == ".." || s.contains('/') || s.contains('\0') {
        return Err(format!("'{s}' is not a plain file name"));
    }
    Ok(s.to_string())
}

impl Applet for Args {
    fn logging(&self) -> &LogArgs {
        &self.log
    }

    async fn run(self) -> Result<Outcome, Failure> {
        if self.mode & 0o111 == 0 {
            return Err(Failure::usage(format!(
                "--mode {:04o} would make the copy not executable",
                self.mode
            )));
        }
        let names: Vec<&'static str> = inprocess::all().iter().map(|a| a.name).collect();
        let report = copy_self(&self.dir, &self.name, self.mode, self.links, &names)?;
        info!(
            dest = %report.dest.display(),
            bytes = report.bytes,
            links = report.links,
            "copied initbox"
        );
        Ok(Outcome::OK)
    }
}

/// What [`copy_self`] did.
#[derive(Debug)]
pub struct Report {
    pub dest: PathBuf,
    pub bytes: u64,
    pub links: usize,
}

fn io_failure(action: &str, path: &Path, e: std::io::Error) -> Failure {
    let msg = format!("{action} {}: {e}", path.display());
    match e.kind() {
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
            Failure::env_refused(msg)
        }
        _ => Failure::failed(msg),
    }
}

/// The bytes of the running binary: `/proc/self/exe` (works even if the file was replaced), or
/// argv\[0\] when /proc is not mounted (a bare chroot) and argv\[0\] is a path.
fn own_binary() -> Result<Vec<u8>, Failure> {
    if let Ok(b) = std::fs::read("/proc/self/exe") {
        return Ok(b);
    }
    let exe = std::env::current_exe().ok().or_else(|| {
        std::env::args_os()
            .next()
            .map(PathBuf::from)
            .filter(|p| p.components().count() > 1)
    });
    let Some(exe) = exe else {
        return Err(Failure::failed(
            "cannot find this binary (no /proc/self/exe and argv[0] is not a path)",
        ));
    };
    std::fs::read(&exe).map_err(|e| io_failure("cannot read", &exe, e))
}

/// Copy the running binary to `dir/name` and, with `links`, link each applet name to it.
pub fn copy_self(
    dir: &Path,
    name: &str,
    mode: u32,
    links: bool,
    applets: &[&str],
) -> Result<Report, Failure> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Failure::failed(format!(
                "{} exists and is not a directory",
                dir.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            atomic::create_dirs(dir, 0o755, None)?
        }
        Err(e) => return Err(io_failure("cannot use", dir, e)),
    }
    if links && applets.contains(&name) {
        return Err(Failure::usage(format!(
            "--name {name} is an applet name; with --links it would be replaced by a link"
        )));
    }
    let bytes = own_binary()?;
    let dest = dir.join(name);
    refuse_foreign(&dest, None)?;
    let opts = WriteOptions {
        mode,
        owner: None,
        create_dirs: false,
    };
    atomic::write(&dest, &bytes, &opts)?;
    let written = std::fs::metadata(&dest).map_err(|e| io_failure("cannot check", &dest, e))?;
    if written.len() != bytes.len() as u64 {
        return Err(Failure::failed(format!(
            "{}: wrote {} bytes, expected {}",
            dest.display(),
            written.len(),
            bytes.len()
        )));
    }
    let mut made = 0;
    if links {
        for applet in applets {
            link(dir, applet, name)?;
            made += 1;
        }
    }
    Ok(Report {
        dest,
        bytes: written.len(),
        links: made,
    })
}

/// Refuse to replace something that is neither ours nor absent: a directory, or (for links) a
/// regular file that is not a link.
fn refuse_foreign(path: &Path, want_link: Option<&str>) -> Result<(), Failure> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    let foreign = if meta.is_dir() {
        true
    } else if want_link.is_some() {
        !meta.file_type().is_symlink()
    } else {
        // The copy may replace an earlier copy or a link, never a file of another owner.
        meta.is_file() && meta.uid() != current_uid()
    };
    if foreign {
        return Err(Failure::failed(format!(
            "{} exists and is not an initbox copy or link; not replaced",
            path.display()
        )));
    }
    Ok(())
}

fn current_uid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

/// `dir/applet -> target` as a relative symlink, replaced atomically (symlink beside, rename).
fn link(dir: &Path, applet: &str, target: &str) -> Result<(), Failure> {
    let path = dir.join(applet);
    refuse_foreign(&path, Some(target))?;
    let temp = dir.join(format!(".initbox-link-{}-{applet}", std::process::id()));
    let _ = std::fs::remove_file(&temp);
    std::os::unix::fs::symlink(target, &temp)
        .map_err(|e| io_failure("cannot create link", &temp, e))?;
    std::fs::rename(&temp, &path).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        io_failure("cannot rename link into", &path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn copies_with_mode_and_links_relatively() {
        let dir = tempfile_dir();
        let r = copy_self(&dir, "initbox", 0o755, true, &["wait-for-tcp", "notify"]).unwrap();
        let meta = std::fs::metadata(&r.dest).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
        assert_eq!(
            meta.len(),
            std::fs::metadata("/proc/self/exe").unwrap().len()
        );
        assert_eq!(
            std::fs::read_link(dir.join("wait-for-tcp")).unwrap(),
            PathBuf::from("initbox")
        );
        assert_eq!(r.links, 2);
        // Idempotent: a second run replaces its own copy and links.
        copy_self(&dir, "initbox", 0o755, true, &["wait-for-tcp", "notify"]).unwrap();
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".initbox"))
            .collect();
        assert!(leftovers.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn leaves_foreign_files_alone() {
        let dir = tempfile_dir();
        std::fs::write(dir.join("notify"), b"mine").unwrap();
        let err = copy_self(&dir, "initbox", 0o755, true, &["notify"]).unwrap_err();
        assert!(err.message.contains("not replaced"), "{}", err.message);
        assert_eq!(std::fs::read(dir.join("notify")).unwrap(), b"mine");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn names_are_plain() {
        assert!(parse_name("../x").is_err());
        assert!(parse_name("ib").is_ok());
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "initbox-copy-self-unit-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
