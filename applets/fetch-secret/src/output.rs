//! Where resolved secrets go: one file each, one file in a format, or a command's environment.
//! Files are staged first and renamed into place only when every one of them is staged.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use clap::ValueEnum;
use initbox_runtime::atomic::{self, Staged, WriteOptions};
use initbox_runtime::{Failure, redact};
use serde_json::{Map, Value};

use crate::SecretValue;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `NAME='value'` lines (docker compose `env_file`, systemd `EnvironmentFile`).
    Dotenv,
    /// `export NAME='value'` lines, for `. file` in a shell.
    Shell,
    /// One JSON object; whole secrets stay structured.
    Json,
    /// One YAML mapping; whole secrets stay structured.
    Yaml,
}

impl Format {
    /// The name given to `--format`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Dotenv => "dotenv",
            Format::Shell => "shell",
            Format::Json => "json",
            Format::Yaml => "yaml",
        }
    }
}

/// Whether `name` can be an environment variable.
pub fn is_env_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The destination of a per-secret file: NAME itself if absolute, else under `dir`.
/// Relative names may not climb out of `dir`.
pub fn file_path(dir: &Path, name: &str) -> Result<PathBuf, Failure> {
    let p = Path::new(name);
    // The last part must name a file: not empty, '.' or '..' ('.', 'a/.', '/').
    if name.is_empty() || matches!(name.rsplit('/').next(), Some("" | "." | "..")) {
        return Err(Failure::usage(format!("'{name}' is not a file name")));
    }
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    if p.components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(Failure::usage(format!(
            "'{name}': a relative file name may not contain '..'"
        )));
    }
    Ok(dir.join(p))
}

fn single_quoted(v: &str) -> String {
    format!("'{}'", v.replace('\'', r"'\''"))
}

/// A dotenv value that four readers read back as `v`: docker compose's `env_file`,
/// python-dotenv (with its default interpolation), systemd's `EnvironmentFile=` and a POSIX
/// shell (`set -a; . FILE`). systemd.exec documents POSIX-shell quoting for it: inside `'…'`
/// every character but `'` is literal; inside `"…"` a backslash before `"`, `\`, `` ` `` or `$`
/// keeps that character, and both quotes may span lines.
/// - `'v'` when possible: literal for the shell and systemd, literal for compose except `\'`,
///   and python-dotenv decodes only `\\` and `\'` there; so `v` holds no `'`, no backslash
///   pair and does not end with a backslash. Newlines stay literal (all four read multi-line
///   quoted values).
/// - otherwise `"v"` with `\\` and `\"`, which all four decode alike, as long as `v` holds no
///   `$` and no backtick (the shell expands them, compose interpolates `$`, and python-dotenv
///   keeps `\$` and `` \` `` as written, so no escape of them reads alike).
/// - `${` (python-dotenv expands it inside any quotes), a carriage return (python-dotenv reads
///   files with universal newlines, and only double-quote escapes the shell does not decode
///   could keep it), a final backslash, and a `'` together with `$` or a backtick fit neither
///   form: refused (exit 3) rather than written so that a reader gets another value.
fn dotenv_value(name: &str, v: &str) -> Result<String, Failure> {
    let refuse = |why: &str| {
        Err(Failure::invalid_input(format!(
            "the value of {name} cannot be written as dotenv that docker compose, python-dotenv, \
             systemd and a POSIX shell read alike ({why}); use --format json or yaml, or files"
        )))
    };
    if v.contains("${") {
        return refuse("it holds '${', which python-dotenv expands inside any quotes");
    }
    if v.contains('\r') {
        return refuse("it holds a carriage return");
    }
    if v.ends_with('\\') {
        return refuse("it ends with a backslash");
    }
    let bytes = v.as_bytes();
    let no_backslash_pair = bytes
        .windows(2)
        .all(|w| w[0] != b'\\' || (w[1] != b'\\' && w[1] != b'\''));
    if !v.contains('\'') && no_backslash_pair {
        return Ok(format!("'{v}'"));
    }
    if v.contains(['$', '`']) {
        return refuse("it holds a ' or a backslash pair together with '$' or '`'");
    }
    let mut out = String::from("\"");
    for c in v.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(out)
}

/// Render `entries` (absent optional secrets left out) in `format`.
pub fn render(format: Format, entries: &[(String, SecretValue)]) -> Result<String, Failure> {
    let present = entries.iter().filter(|(_, v)| !v.is_absent());
    let what = format!("--format {}", format.name());
    for (k, v) in present.clone() {
        v.try_text(k, &what)?;
    }
    Ok(match format {
        Format::Dotenv => present
            .map(|(k, v)| Ok(format!("{k}={}\n", dotenv_value(k, &v.text())?)))
            .collect::<Result<String, Failure>>()?,
        Format::Shell => present
            .map(|(k, v)| format!("export {k}={}\n", single_quoted(&v.text())))
            .collect(),
        Format::Json | Format::Yaml => {
            let mut map = Map::new();
            for (k, v) in present {
                map.insert(k.clone(), v.json().cloned().unwrap_or(Value::Null));
            }
            let v = Value::Object(map);
            if format == Format::Json {
                let mut s = serde_json::to_string_pretty(&v)
                    .map_err(|e| Failure::failed(format!("cannot render JSON: {e}")))?;
                s.push('\n');
                s
            } else {
                serde_norway::to_string(&v)
                    .map_err(|e| Failure::failed(format!("cannot render YAML: {e}")))?
            }
        }
    })
}

/// Stage every file, then rename them all into place: nothing is visible unless everything
/// could be written.
pub fn write_all(files: &[(PathBuf, Vec<u8>)], opts: &WriteOptions) -> Result<(), Failure> {
    let mut staged: Vec<Staged> = Vec::with_capacity(files.len());
    for (path, contents) in files {
        staged.push(atomic::stage(path, contents, opts)?);
    }
    for s in staged {
        tracing::debug!(path = %s.destination().display(), mode = format!("{:04o}", opts.mode), "wrote");
        s.commit()?;
    }
    Ok(())
}

/// Variables never handed to the command: initbox's configuration and the credentials used to
/// fetch the secrets.
pub fn is_stripped(name: &str) -> bool {
    const CREDENTIALS: &[&str] = &[
        "VAULT_TOKEN",
        "BAO_TOKEN",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
    ];
    name.starts_with("INITBOX_") || CREDENTIALS.contains(&name)
}

/// The command's environment: ours without [`is_stripped`] variables, plus `secrets`.
pub fn exec_env(secrets: &[(String, SecretValue)]) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| !is_stripped(&k.to_string_lossy()))
        .filter(|(k, _)| !secrets.iter().any(|(n, _)| k == n.as_str()))
        .collect();
    for (name, v) in secrets.iter().filter(|(_, v)| !v.is_absent()) {
        let text = v.text();
        redact::register(&text);
        env.push((name.into(), text.into()));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(single_quoted("a'b"), r"'a'\''b'");
        let d = |v: &str| dotenv_value("V", v);
        assert_eq!(d("p@ss $x `id`").unwrap(), "'p@ss $x `id`'");
        assert_eq!(d("a\\b").unwrap(), r"'a\b'");
        assert_eq!(d("a\\\\b").unwrap(), r#""a\\\\b""#);
        assert_eq!(d("it's\nx").unwrap(), "\"it's\nx\"");
        assert_eq!(d("a$\nb").unwrap(), "'a$\nb'");
        for refused in [
            "${HOME}",
            "it's $x",
            "it's `id`",
            "a\\\\$b",
            "tail $\\",
            "C:\\\\",
            "a\r\n",
        ] {
            let e = d(refused).unwrap_err();
            assert_eq!(e.code, initbox_runtime::Code::INVALID_INPUT);
            assert!(e.message.contains("value of V") && !e.message.contains(refused));
        }
    }

    #[test]
    fn renders_formats() {
        let e = vec![
            ("A".to_string(), SecretValue::from_text("x'y")),
            ("B".to_string(), SecretValue::absent()),
        ];
        assert_eq!(render(Format::Shell, &e).unwrap(), "export A='x'\\''y'\n");
        assert_eq!(
            render(Format::Json, &e).unwrap(),
            "{\n  \"A\": \"x'y\"\n}\n"
        );
        assert!(render(Format::Yaml, &e).unwrap().starts_with("A: "));
    }

    #[test]
    fn file_names() {
        let d = Path::new("/s");
        assert_eq!(file_path(d, "db/pw").unwrap(), Path::new("/s/db/pw"));
        assert_eq!(file_path(d, "/abs/x").unwrap(), Path::new("/abs/x"));
        assert!(file_path(d, "../x").is_err());
        assert!(file_path(d, "a/../../x").is_err());
        for bad in [".", "a/.", "/", "..", "x/.."] {
            let e = file_path(d, bad).unwrap_err();
            assert_eq!(e.code, initbox_runtime::Code::USAGE, "{bad}");
            assert!(e.message.contains(&format!("'{bad}'")), "{}", e.message);
        }
        assert!(is_env_name("DB_PW") && !is_env_name("1A") && !is_env_name("a-b"));
        assert!(is_stripped("INITBOX_VAULT_ADDR") && is_stripped("VAULT_TOKEN"));
        assert!(!is_stripped("VAULT_ADDR"));
    }
}
