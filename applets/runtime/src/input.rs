//! Bounded input: every file, `@file` and standard input an applet reads goes through here, so
//! no input can grow a process without limit (`@/dev/zero`, a FIFO, a 20 GB file).
//!
//! | input | default limit | raise with |
//! |---|---|---|
//! | secret files (password, token, key, `@file`, `ref+file://`) | 1 MiB ([`SECRET_LIMIT`]) | — |
//! | specs, steps, templates, data, messages, migrations, stdin | 16 MiB ([`DEFAULT_LIMIT`]) | `--max-input-size` / `INITBOX_MAX_INPUT_SIZE` |
//!
//! Reading stops one byte past the limit whatever the file is (the size a `stat` reports is
//! only a shortcut): past it, the run ends with exit 3 and one line naming the input.
//!
//! The toolkit's one rule for secret files ([`read_secret`]): the value is the file's content
//! less exactly one trailing newline (`\n` or `\r\n`), as Kubernetes and Docker secrets are
//! usually written; `?raw=true` (or an applet's raw flag) keeps the content byte for byte.
//! A missing or unreadable input file is exit 3 (invalid input), permission denied exit 4
//! (environment refused), the same in every applet.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::exit::Failure;

/// The limit for a file that holds one secret value (password, token, key, URL with password).
pub const SECRET_LIMIT: u64 = 1 << 20;
/// The default limit for every other input (specs, steps, templates, data, messages, stdin).
pub const DEFAULT_LIMIT: u64 = 16 << 20;
/// The variable that raises (or lowers) [`DEFAULT_LIMIT`]; `--max-input-size` sets the same.
pub const ENV: &str = "INITBOX_MAX_INPUT_SIZE";

/// 0 = not set yet: read [`ENV`] on first use.
static LIMIT: AtomicU64 = AtomicU64::new(0);
/// Whether the running applet has a `--max-input-size` flag (it called [`set_limit`]).
static HAS_FLAG: AtomicBool = AtomicBool::new(false);

/// Parse a size: bytes (`1048576`) or with a binary suffix (`64K`, `16M`, `16MiB`, `1G`).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, suffix) = t.split_at(split);
    let mult: u64 = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => 0,
    };
    match digits.parse::<u64>().ok().and_then(|n| n.checked_mul(mult)) {
        Some(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "'{s}' is not a size (expected bytes or e.g. 64K, 16M, 1G)"
        )),
    }
}

/// Set the limit for non-secret inputs (an applet's `--max-input-size`).
pub fn set_limit(bytes: u64) {
    LIMIT.store(bytes.max(1), Ordering::Relaxed);
    HAS_FLAG.store(true, Ordering::Relaxed);
}

/// The limit for non-secret inputs: `--max-input-size`, else `INITBOX_MAX_INPUT_SIZE`, else
/// [`DEFAULT_LIMIT`]. A malformed variable falls back to the default.
pub fn limit() -> u64 {
    match LIMIT.load(Ordering::Relaxed) {
        0 => {
            let n = std::env::var(ENV)
                .ok()
                .and_then(|v| parse_size(&v).ok())
                .unwrap_or(DEFAULT_LIMIT);
            LIMIT.store(n, Ordering::Relaxed);
            n
        }
        n => n,
    }
}

/// How to raise [`limit`]: `raise with --max-input-size / INITBOX_MAX_INPUT_SIZE` when the
/// running applet has the flag, else the variable alone.
pub fn raise_hint() -> String {
    if HAS_FLAG.load(Ordering::Relaxed) {
        format!("raise with --max-input-size / {ENV}")
    } else {
        format!("raise with {ENV}")
    }
}

/// `1 MiB`, `16 MiB`, `1500 bytes`.
pub fn human_size(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// Which limit applies, and so what the message says about raising it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Secret,
    Data,
}

impl Kind {
    fn limit(self) -> u64 {
        match self {
            Kind::Secret => SECRET_LIMIT,
            Kind::Data => limit(),
        }
    }

    fn too_large(self, label: &str, limit: u64) -> Failure {
        let size = human_size(limit);
        Failure::invalid_input(match self {
            Kind::Secret => format!("{label}: larger than {size} (the limit for a secret file)"),
            Kind::Data => format!("{label}: larger than {size} ({})", raise_hint()),
        })
    }
}

/// The one mapping of a read error: permission denied is exit 4, anything else exit 3.
pub fn read_error(label: &str, e: &io::Error) -> Failure {
    let why = match e.kind() {
        io::ErrorKind::NotFound => "no such file".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        io::ErrorKind::IsADirectory => "is a directory".to_string(),
        _ => e.to_string(),
    };
    let msg = format!("{label}: cannot read: {why}");
    if e.kind() == io::ErrorKind::PermissionDenied {
        Failure::env_refused(msg)
    } else {
        Failure::invalid_input(msg)
    }
}

fn read_bounded(mut r: impl Read, label: &str, kind: Kind, hint: u64) -> Result<Vec<u8>, Failure> {
    let limit = kind.limit();
    let mut buf = Vec::with_capacity(hint.min(limit) as usize);
    r.by_ref()
        .take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| read_error(label, &e))?;
    if buf.len() as u64 > limit {
        return Err(kind.too_large(label, limit));
    }
    Ok(buf)
}

fn read_path(path: &Path, label: &str, kind: Kind) -> Result<Vec<u8>, Failure> {
    let file = File::open(path).map_err(|e| read_error(label, &e))?;
    let meta = file.metadata().map_err(|e| read_error(label, &e))?;
    if meta.is_dir() {
        return Err(Failure::invalid_input(format!(
            "{label}: cannot read: is a directory"
        )));
    }
    // A shortcut for regular files; /dev/zero and FIFOs report 0 and are cut by the read.
    if meta.is_file() && meta.len() > kind.limit() {
        return Err(kind.too_large(label, kind.limit()));
    }
    read_bounded(file, label, kind, meta.len())
}

fn utf8(bytes: Vec<u8>, label: &str) -> Result<String, Failure> {
    String::from_utf8(bytes).map_err(|_| Failure::invalid_input(format!("{label}: not UTF-8 text")))
}

/// Read an input file (spec, steps, template, data, message) up to [`limit`]. `label` names the
/// input in messages, e.g. `steps file /etc/steps.yaml`.
pub fn read(path: &Path, label: &str) -> Result<Vec<u8>, Failure> {
    read_path(path, label, Kind::Data)
}

/// [`read`] as UTF-8 text.
pub fn read_string(path: &Path, label: &str) -> Result<String, Failure> {
    utf8(read(path, label)?, label)
}

/// Read standard input up to [`limit`], as UTF-8 text.
pub fn read_stdin(label: &str) -> Result<String, Failure> {
    utf8(
        read_bounded(io::stdin().lock(), label, Kind::Data, 0)?,
        label,
    )
}

/// Read any reader up to [`limit`] (e.g. a file opened by the caller).
pub fn read_from(r: impl Read, label: &str) -> Result<Vec<u8>, Failure> {
    read_bounded(r, label, Kind::Data, 0)
}

/// Read a secret file's bytes up to [`SECRET_LIMIT`], as they are (no newline rule, not
/// registered): for callers that parse or post-process the content.
pub fn read_secret_bytes(path: &Path, label: &str) -> Result<Vec<u8>, Failure> {
    read_path(path, label, Kind::Secret)
}

/// Drop exactly one trailing newline (`\n` or `\r\n`): the toolkit's secret-file rule.
pub fn strip_one_newline(s: &str) -> &str {
    s.strip_suffix("\r\n")
        .or_else(|| s.strip_suffix('\n'))
        .unwrap_or(s)
}

/// Read one secret value from a file: UTF-8, at most [`SECRET_LIMIT`], one trailing newline
/// dropped unless `raw`, registered with the scrubber before it is returned.
pub fn read_secret(path: &Path, label: &str, raw: bool) -> Result<String, Failure> {
    let text = utf8(read_secret_bytes(path, label)?, label)?;
    let value = if raw {
        text
    } else {
        strip_one_newline(&text).to_string()
    };
    crate::redact::register(&value);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_size("16M").unwrap(), 16 << 20);
        assert_eq!(parse_size("16MiB").unwrap(), 16 << 20);
        assert_eq!(parse_size("64k").unwrap(), 64 << 10);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert!(parse_size("").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("12X").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
        assert_eq!(human_size(16 << 20), "16 MiB");
        assert_eq!(human_size(1500), "1500 bytes");
    }

    #[test]
    fn one_trailing_newline_goes() {
        assert_eq!(strip_one_newline("pw\n"), "pw");
        assert_eq!(strip_one_newline("pw\r\n"), "pw");
        assert_eq!(strip_one_newline("pw\n\n"), "pw\n");
        assert_eq!(strip_one_newline("pw "), "pw ");
        assert_eq!(strip_one_newline("pw"), "pw");
    }

    #[test]
    fn dev_zero_stops_at_the_secret_limit() {
        let e = read_secret_bytes(Path::new("/dev/zero"), "--password-file /dev/zero").unwrap_err();
        assert_eq!(e.code, crate::Code::INVALID_INPUT);
        assert_eq!(
            e.message,
            "--password-file /dev/zero: larger than 1 MiB (the limit for a secret file)"
        );
    }

    #[test]
    fn secrets_lose_one_newline_unless_raw_and_errors_are_classified() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::File::create(&p)
            .unwrap()
            .write_all(b"s3cret-value\n\n")
            .unwrap();
        assert_eq!(read_secret(&p, "pw", false).unwrap(), "s3cret-value\n");
        assert_eq!(read_secret(&p, "pw", true).unwrap(), "s3cret-value\n\n");
        let missing = read_secret(&dir.path().join("nope"), "token file x", false).unwrap_err();
        assert_eq!(missing.code, crate::Code::INVALID_INPUT);
        assert_eq!(missing.message, "token file x: cannot read: no such file");
        let d = read(dir.path(), "spec d").unwrap_err();
        assert_eq!(d.code, crate::Code::INVALID_INPUT);
    }

    #[test]
    fn a_reader_past_the_limit_is_cut() {
        let e = read_from(io::repeat(b'a'), "stdin").unwrap_err();
        assert!(
            e.message.starts_with("stdin: larger than "),
            "{}",
            e.message
        );
        assert!(e.message.contains(ENV), "{}", e.message);
    }
}
