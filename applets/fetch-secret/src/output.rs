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

/// A dotenv value that docker compose's `env_file` and python-dotenv (with its default
/// interpolation) both read back as `v`:
/// - single quotes when possible: literal for compose; python-dotenv decodes only `\\` and
///   `\'` there, so a `'` is written `\'` (compose reads that too) and a backslash is allowed
///   only where it starts neither sequence;
/// - otherwise double quotes with `\\`, `\"`, `\n`, `\r`, which both decode alike, as long as
///   there is no `$` (compose interpolates `$` in double quotes, and no escape of it is read
///   alike by both);
/// - `${` is interpolated by python-dotenv inside any quotes, a `$` beside a newline or an
///   ambiguous backslash fits neither form, and python-dotenv misreads a final backslash in
///   double quotes: such values are refused (exit 3) rather than written so that a reader
///   gets another value.
fn dotenv_value(name: &str, v: &str) -> Result<String, Failure> {
    let refuse = |why: &str| {
        Err(Failure::invalid_input(format!(
            "the value of {name} cannot be written as dotenv that docker compose and \
             python-dotenv read alike ({why}); use --format json, yaml or shell, or files"
        )))
    };
    if v.contains("${") {
        return refuse("it holds '${', which python-dotenv expands inside any quotes");
    }
    let bytes = v.as_bytes();
    let backslashes_plain = bytes
        .iter()
        .enumerate()
        .all(|(i, &b)| b != b'\\' || bytes.get(i + 1).is_some_and(|n| *n != b'\\' && *n != b'\''));
    if backslashes_plain && !v.contains(['\n', '\r']) {
        return Ok(format!("'{}'", v.replace('\'', r"\'")));
    }
    if v.contains('$') {
        return refuse("it holds '$' with a newline or a backslash sequence");
    }
    if v.ends_with('\\') {
        // python-dotenv takes the `\"` of an escaped final backslash for an escaped quote.
        return refuse("it ends with a backslash");
    }
    let mut out = String::from("\"");
    for c in v.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str(r"\n"),
            '\r' => out.push_str(r"\r"),
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
        assert_eq!(d("p@ss $x").unwrap(), "'p@ss $x'");
        assert_eq!(d("it's $x").unwrap(), r"'it\'s $x'");
        assert_eq!(d("a\\b").unwrap(), r"'a\b'");
        assert_eq!(d("a\\\\b").unwrap(), r#""a\\\\b""#);
        assert_eq!(d("it's\nx").unwrap(), r#""it's\nx""#);
        for refused in ["${HOME}", "a$\nb", "a\\\\$b", "tail $\\", "C:\\\\"] {
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
