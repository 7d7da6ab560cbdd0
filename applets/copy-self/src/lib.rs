//! `initbox copy-self DIR`: copy this binary (and optionally one link per applet) into a shared
//! volume, so the application container can run `DIR/initbox wait-for-tcp db:5432 -- app` or
//! `DIR/initbox fetch-secret ... --exec -- app` as its entrypoint, without a shell and without
//! baking initbox into the application image.
//!
//! The copy is atomic (temporary file in DIR, mode 0755 set before the content, fsync, rename),
//! so an application container never sees a half-written binary; links are relative symlinks,
//! so they work wherever the volume is mounted.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use clap::Parser;
use initbox_runtime::atomic::{self, WriteOptions};
use initbox_runtime::{Applet, Failure, LogArgs, Outcome, inprocess};
use tracing::{info, warn};

/// The applet's one-line description, and also how an earlier copy is recognised: every initbox
/// built with copy-self carries this text (clap keeps it for `--help`), so an ELF file holding it
/// is an initbox copy of any version. Changing the text makes copies made by earlier versions
/// unrecognisable, so they would be refused instead of replaced.
const IDENTITY: &str =
    "Copy the initbox binary (and optionally its applet links) into a shared directory";

#[derive(Debug, Parser)]
#[command(
    name = "copy-self",
    version,
    about = IDENTITY,
    long_about = "Copy this initbox binary into DIR (typically an emptyDir volume shared with the \
                  application container), atomically and with mode 0755, so the application \
                  container can run initbox from the volume as its entrypoint. With --links, also \
                  create a relative symlink per applet (DIR/wait-for-tcp -> initbox). Existing \
                  copies and links are replaced; any other file in the way (a file that is not \
                  an initbox copy, a copy owned by another user, a directory) is left alone and \
                  reported, and then nothing is written. Set-user-ID and set-group-ID modes are \
                  refused unless --allow-setid is given.",
    after_help = "Examples:\n  initbox copy-self /initbox-bin\n  \
                  initbox copy-self --links /shared/bin\n  \
                  # then, in the app container:\n  \
                  /initbox-bin/initbox wait-for-tcp db:5432 -- /app/server"
)]
pub struct Args {
    /// Directory to copy into (created with mode 0755 if missing).
    #[arg(value_name = "DIR", env = initbox_runtime::env::COPY_SELF_DIR)]
    pub dir: PathBuf,

    /// Also create one relative symlink per applet next to the copy.
    #[arg(long, env = initbox_runtime::env::COPY_SELF_LINKS, value_parser = clap::builder::BoolishValueParser::new())]
    pub links: bool,

    /// File name of the copy.
    #[arg(long, value_name = "NAME", default_value = "initbox", value_parser = parse_name,
          env = initbox_runtime::env::COPY_SELF_NAME)]
    pub name: String,

    /// File mode of the copy (octal; no sticky bit, no set-ID bits without --allow-setid).
    #[arg(long, value_name = "MODE", default_value = "0755", value_parser = atomic::parse_mode,
          env = initbox_runtime::env::COPY_SELF_MODE)]
    pub mode: u32,

    /// Allow a set-user-ID or set-group-ID --mode (e.g. 4755): the copy then runs as its owner
    /// (or group) for everyone who can execute it. Logged as a warning.
    #[arg(long, env = initbox_runtime::env::COPY_SELF_ALLOW_SETID,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_setid: bool,

    #[command(flatten)]
    pub log: LogArgs,
}

fn parse_name(s: &str) -> Result<String, String> {
    if s.is_empty() || s == "." || s == ".." || s.contains('/') || s.contains('\0') {
        return Err(format!("'{s}' is not a plain file name"));
    }
    Ok(s.to_string())
}

const SETUID: u32 = 0o4000;
const SETGID: u32 = 0o2000;
const STICKY: u32 = 0o1000;

/// Refuse modes that make no sense or widen privileges; returns the warning to log when set-ID
/// bits were explicitly allowed.
fn check_mode(mode: u32, allow_setid: bool) -> Result<Option<String>, Failure> {
    if mode & 0o111 == 0 {
        return Err(Failure::usage(format!(
            "--mode {mode:04o} would make the copy not executable"
        )));
    }
    // Linux ignores the sticky bit on a regular file: asking for it is a mistake, not a wish.
    if mode & STICKY != 0 {
        return Err(Failure::usage(format!(
            "--mode {mode:04o} sets the sticky bit, which means nothing on a file"
        )));
    }
    let (uid, gid) = (euid(), egid());
    let (setid, runs_as) = match (mode & SETUID != 0, mode & SETGID != 0) {
        (false, false) => return Ok(None),
        (true, false) => ("set-user-ID", format!("as uid {uid}")),
        (false, true) => ("set-group-ID", format!("with gid {gid}")),
        (true, true) => (
            "set-user-ID and set-group-ID",
            format!("as uid {uid} with gid {gid}"),
        ),
    };
    if !allow_setid {
        return Err(Failure::usage(format!(
            "--mode {mode:04o} is {setid}: everyone who can run the copy would run it {runs_as}; \
             give --allow-setid (INITBOX_COPY_SELF_ALLOW_SETID) if that is meant"
        )));
    }
    Ok(Some(format!(
        "--mode {mode:04o} (allowed by --allow-setid): the copy is {setid}, so everyone who can \
         run it runs it {runs_as}"
    )))
}

impl Applet for Args {
    fn logging(&self) -> &LogArgs {
        &self.log
    }

    async fn run(self) -> Result<Outcome, Failure> {
        if let Some(w) = check_mode(self.mode, self.allow_setid)? {
            warn!("{w}");
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
///
/// Every destination is checked before anything is written: when one of them holds something
/// that is not an earlier copy or link, the directory is left as it was.
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
    let dest = dir.join(name);
    let link_names: &[&str] = if links { applets } else { &[] };
    refuse_conflicts(dir, name, link_names)?;
    let bytes = own_binary()?;
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
    for applet in link_names {
        link(dir, applet, name)?;
    }
    Ok(Report {
        dest,
        bytes: written.len(),
        links: link_names.len(),
    })
}

/// Check the copy's path and every link's path; the first conflict is the error, the others are
/// named after it, so one run shows everything in the way.
fn refuse_conflicts(dir: &Path, name: &str, link_names: &[&str]) -> Result<(), Failure> {
    let mut conflicts = Vec::new();
    for n in std::iter::once(&name).chain(link_names) {
        if let Some(why) = in_the_way(&dir.join(n))? {
            conflicts.push((*n, why));
        }
    }
    let Some((_, first)) = conflicts.first() else {
        return Ok(());
    };
    let mut msg = format!("{first}; not replaced");
    if conflicts.len() > 1 {
        let others: Vec<&str> = conflicts[1..].iter().map(|(n, _)| *n).collect();
        msg.push_str(&format!(
            "; also in the way: {}",
            shorten(&others, 8).join(", ")
        ));
    }
    msg.push_str("; nothing written");
    Err(Failure::failed(msg))
}

fn shorten(names: &[&str], max: usize) -> Vec<String> {
    let mut v: Vec<String> = names.iter().take(max).map(|s| s.to_string()).collect();
    if names.len() > max {
        v.push(format!("{} more", names.len() - max));
    }
    v
}

/// Why `path` must not be replaced, or `None` when it is absent, a symlink (an earlier link) or an
/// earlier initbox copy owned by the user initbox runs as.
fn in_the_way(path: &Path) -> Result<Option<String>, Failure> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_failure("cannot check", path, e)),
    };
    let p = path.display();
    let ft = meta.file_type();
    if ft.is_symlink() {
        // Renaming over a link replaces the link itself, never what it points to.
        return Ok(None);
    }
    if !ft.is_file() {
        let what = if ft.is_dir() {
            "a directory"
        } else if ft.is_fifo() {
            "a named pipe"
        } else if ft.is_socket() {
            "a socket"
        } else if ft.is_block_device() || ft.is_char_device() {
            "a device"
        } else {
            "not a regular file"
        };
        return Ok(Some(format!("{p} is {what}")));
    }
    let me = euid();
    if meta.uid() != me {
        let what = match file_kind(path) {
            Ok(Kind::Initbox) => "an initbox copy",
            _ => "a file",
        };
        return Ok(Some(format!(
            "{p} is {what} owned by uid {}, but initbox runs as uid {me}",
            meta.uid()
        )));
    }
    let kind = match file_kind(path) {
        Ok(k) => k,
        Err(e) => {
            return Ok(Some(format!(
                "{p} cannot be read to tell whether it is an initbox copy ({e})"
            )));
        }
    };
    Ok(match kind {
        Kind::Initbox => None,
        Kind::Script => Some(format!("{p} is a script, not an initbox copy")),
        Kind::OtherElf => Some(format!("{p} is a program that is not initbox")),
        Kind::Other => Some(format!(
            "{p} is a file ({} bytes) that is not an initbox copy",
            meta.len()
        )),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// An ELF file carrying [`IDENTITY`].
    Initbox,
    /// Starts with `#!`.
    Script,
    OtherElf,
    Other,
}

/// Larger than any initbox build (a debug build is ~150 MiB): not worth reading to the end.
const MAX_COPY_SIZE: u64 = 1 << 30;

/// Tell an initbox copy from anything else by its content, reading it once in blocks.
fn file_kind(path: &Path) -> std::io::Result<Kind> {
    let mut f = std::fs::File::open(path)?;
    let mut head = [0u8; 4];
    let mut got = 0;
    while got < head.len() {
        match f.read(&mut head[got..])? {
            0 => break,
            n => got += n,
        }
    }
    let head = &head[..got];
    if head.starts_with(b"#!") {
        return Ok(Kind::Script);
    }
    if head != b"\x7fELF" {
        return Ok(Kind::Other);
    }
    let finder = memchr::memmem::Finder::new(IDENTITY.as_bytes());
    let keep = IDENTITY.len() - 1;
    let mut buf = vec![0u8; 256 * 1024];
    // Carry the last `keep` bytes over, so a mark split across two blocks is still found.
    let mut carried = 0;
    let mut total = head.len() as u64;
    loop {
        let n = f.read(&mut buf[carried..])?;
        if n == 0 {
            return Ok(Kind::OtherElf);
        }
        total += n as u64;
        let filled = carried + n;
        if finder.find(&buf[..filled]).is_some() {
            return Ok(Kind::Initbox);
        }
        if total > MAX_COPY_SIZE {
            return Ok(Kind::OtherElf);
        }
        carried = keep.min(filled);
        buf.copy_within(filled - carried..filled, 0);
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn egid() -> u32 {
    // SAFETY: getegid has no preconditions and cannot fail.
    unsafe { libc::getegid() }
}

/// `dir/applet -> target` as a relative symlink, replaced atomically (symlink beside, rename).
fn link(dir: &Path, applet: &str, target: &str) -> Result<(), Failure> {
    let path = dir.join(applet);
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
    fn copies_are_told_from_other_files_by_content() {
        let dir = tempfile_dir();
        let f = dir.join("f");
        // The running test binary carries the mark like every initbox build.
        assert_eq!(
            file_kind(Path::new("/proc/self/exe")).unwrap(),
            Kind::Initbox
        );
        assert_eq!(file_kind(Path::new("/bin/true")).unwrap(), Kind::OtherElf);
        std::fs::write(&f, "#!/bin/sh\n").unwrap();
        assert_eq!(file_kind(&f).unwrap(), Kind::Script);
        std::fs::write(&f, "").unwrap();
        assert_eq!(file_kind(&f).unwrap(), Kind::Other);
        // The mark split across two read blocks is still found.
        let mut elf = b"\x7fELF".to_vec();
        elf.resize(256 * 1024 - 10, 0);
        elf.extend_from_slice(IDENTITY.as_bytes());
        std::fs::write(&f, &elf).unwrap();
        assert_eq!(file_kind(&f).unwrap(), Kind::Initbox);
        elf.truncate(elf.len() - 1);
        std::fs::write(&f, &elf).unwrap();
        assert_eq!(file_kind(&f).unwrap(), Kind::OtherElf);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn set_id_and_sticky_modes() {
        assert_eq!(check_mode(0o755, false).unwrap(), None);
        assert_eq!(check_mode(0o644, true).unwrap_err().code.as_i32(), 2);
        assert_eq!(check_mode(0o1755, true).unwrap_err().code.as_i32(), 2);
        for m in [0o4755, 0o2755, 0o6755] {
            let e = check_mode(m, false).unwrap_err();
            assert_eq!(e.code.as_i32(), 2);
            assert!(e.message.contains("--allow-setid"), "{}", e.message);
            assert!(check_mode(m, true).unwrap().is_some());
        }
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
