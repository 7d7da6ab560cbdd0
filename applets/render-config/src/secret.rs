//! `secret("ref+...")` resolution for render-config.
//!
//! The narrow built-in adapter understands `ref+file://PATH[#/json/pointer]` and
//! `ref+env://NAME`. Other backends (Vault, ...) belong to fetch-secret; this module is the one
//! place that connects to them.

use std::path::Path;

use crate::data::{Format, format_of, parse};
use crate::jinja::SecretSource;
use minijinja::Value;

/// The built-in references: `ref+file://` and `ref+env://`.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalSecrets;

impl SecretSource for LocalSecrets {
    fn resolve(&self, reference: &str) -> Result<String, String> {
        resolve_local(reference)
    }
}

/// Resolve `ref+file://` and `ref+env://` references.
pub fn resolve_local(reference: &str) -> Result<String, String> {
    let (body, fragment) = match reference.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (reference, None),
    };
    if let Some(name) = body.strip_prefix("ref+env://") {
        let name = name.trim_end_matches('+');
        if fragment.is_some() {
            return Err(format!("{reference}: ref+env takes no #fragment"));
        }
        return match std::env::var(name) {
            Ok(v) => Ok(v),
            Err(std::env::VarError::NotPresent) => {
                Err(format!("environment variable {name} is not set"))
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(format!("environment variable {name} is not UTF-8"))
            }
        };
    }
    if let Some(path) = body.strip_prefix("ref+file://") {
        let path = path.trim_end_matches('+');
        let path = path.split_once('?').map(|(p, _)| p).unwrap_or(path);
        if path.is_empty() {
            return Err(format!("{reference}: no file path"));
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            let why = match e.kind() {
                std::io::ErrorKind::NotFound => "no such file".to_string(),
                std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
                _ => e.to_string(),
            };
            format!("cannot read {path}: {why}")
        })?;
        return match fragment {
            None => Ok(text),
            Some(pointer) => {
                let format = format_of(Path::new(path)).unwrap_or(Format::Yaml);
                let doc = parse(&text, format)
                    .map_err(|(_, m)| format!("{path} is not structured data: {m}"))?;
                let v = pointer_get(&doc, pointer)
                    .ok_or_else(|| format!("{path}: key {pointer} not found"))?;
                Ok(match v.as_str() {
                    Some(s) => s.to_string(),
                    None => v.to_string(),
                })
            }
        };
    }
    let scheme = reference
        .strip_prefix("ref+")
        .and_then(|r| r.split_once("://"))
        .map(|(s, _)| s);
    match scheme {
        Some(s) => Err(format!(
            "the {s} backend is not available in this build (ref+file:// and ref+env:// are)"
        )),
        None => Err("not a secret reference (expected ref+BACKEND://PATH[#/key])".into()),
    }
}

fn pointer_get(doc: &Value, pointer: &str) -> Option<Value> {
    let mut cur = doc.clone();
    for raw in pointer
        .trim_start_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
    {
        let key = raw.replace("~1", "/").replace("~0", "~");
        cur = match cur.get_attr(&key) {
            Ok(v) if !v.is_undefined() => v,
            _ => {
                let idx: usize = key.parse().ok()?;
                let v = cur.get_item(&Value::from(idx)).ok()?;
                if v.is_undefined() {
                    return None;
                }
                v
            }
        };
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_and_env_refs() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("db.json");
        std::fs::write(&p, r#"{"password": "pw-123", "list": ["a", "b"]}"#).unwrap();
        let r = format!("ref+file://{}#/password", p.display());
        assert_eq!(resolve_local(&r).unwrap(), "pw-123");
        let r = format!("ref+file://{}#/list/1", p.display());
        assert_eq!(resolve_local(&r).unwrap(), "b");
        let r = format!("ref+file://{}#/nope", p.display());
        assert!(resolve_local(&r).unwrap_err().contains("not found"));
        let raw = dir.path().join("raw");
        std::fs::write(&raw, "tok\n").unwrap();
        assert_eq!(
            resolve_local(&format!("ref+file://{}", raw.display())).unwrap(),
            "tok\n"
        );
        assert!(resolve_local("ref+env://INITBOX_SURELY_UNSET_VAR_X").is_err());
        assert!(
            resolve_local("ref+vault://secret/x#/y")
                .unwrap_err()
                .contains("vault")
        );
        assert!(resolve_local("plain").is_err());
    }
}
