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
    if name.is_empty() || name.ends_with('/') {
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

fn dotenv_value(v: &str) -> String {
    if !v.contains('\'') {
        return format!("'{v}'");
    }
    let mut out = String::from("\"");
    for c in v.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '"' => out.push_str("\\\""),
            '$' => out.push_str(r"\$"),
            '\n' => out.push_str(r"\n"),
            '\r' => out.push_str(r"\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Render `entries` (absent optional secrets left out) in `format`.
pub fn render(format: Format, entries: &[(String, SecretValue)]) -> Result<String, Failure> {
    let present = entries.iter().filter(|(_, v)| !v.is_absent());
    Ok(match format {
        Format::Dotenv => present
            .map(|(k, v)| format!("{k}={}\n", dotenv_value(&v.text())))
            .collect(),
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
pub fn write_all(files: &[(PathBuf, String)], opts: &WriteOptions) -> Result<(), Failure> {
    let mut staged: Vec<Staged> = Vec::with_capacity(files.len());
    for (path, contents) in files {
        staged.push(atomic::stage(path, contents.as_bytes(), opts)?);
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
        assert_eq!(dotenv_value("p@ss $x"), "'p@ss $x'");
        assert_eq!(dotenv_value("it's $x\n"), r#""it's \$x\n""#);
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
        assert!(is_env_name("DB_PW") && !is_env_name("1A") && !is_env_name("a-b"));
        assert!(is_stripped("INITBOX_VAULT_ADDR") && is_stripped("VAULT_TOKEN"));
        assert!(!is_stripped("VAULT_ADDR"));
    }
}
